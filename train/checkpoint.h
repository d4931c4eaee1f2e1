// Checkpoints: RUN_DIR/checkpoints/step_<8 digits>/ holding
//   model.safetensors  every parameter tensor by name (fp32), metadata: tipcap_model_config (JSON),
//                      clip_model (the training features' clip_model attribute)
//   state.safetensors  AdamW moments adam.m and adam.v (fp32, flat), metadata: step, data epoch and
//                      cursor, seed, elapsed_s, the full resolved config (JSON)
// Both are readable by Python's safetensors with no code of ours, and both carry a CRC-32.
// A checkpoint is written into a temporary directory and renamed into place, so a kill at any
// moment leaves the previous checkpoints intact; the oldest beyond `keep` are then removed.
// A damaged checkpoint is an error naming the file, and is never overwritten or removed.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "train/model.h"

typedef struct {
    long step;               // optimiser steps done
    DataPosition data;       // where the next step's batch starts
    uint64_t seed;
    double elapsed_s;        // seconds of training in every invocation up to this step
    const char* clip_model;  // saving: the features' clip_model, into model.safetensors (not loaded)
    char* config_json;       // the resolved training config (owned; free())
} TrainState;

// Returns 0, or -1 with a message in err (the previous checkpoints are untouched then).
int checkpoint_save(const char* run_dir, Model* m, const TrainState* st, int keep, char* err, size_t err_size);
// The newest checkpoint directory of run_dir into path: 1 if found, 0 if there is none.
int checkpoint_latest(const char* run_dir, char* path, size_t path_size);
// What checkpoint_load and model_load_weights return when the checkpoint is intact but was saved
// for another model config (err names each config key that differs); -1 is a damaged or foreign file.
#define CHECKPOINT_MISMATCH (-2)

// Restores weights (and, if st is not NULL, the moments and the state). Names, shapes and the
// model config must match the model. Returns 0, CHECKPOINT_MISMATCH or -1 with a message in err.
int checkpoint_load(const char* ckpt_dir, Model* m, TrainState* st, char* err, size_t err_size);

// The model config stored in a model.safetensors (for building the model before loading), and the
// clip_model of the features it was trained on into clip_model ("" in checkpoints older than that).
int checkpoint_read_model_config(const char* model_path, ModelConfig* cfg, char* clip_model, size_t clip_model_size,
                                 char* err, size_t err_size);
// Loads the weights of a model.safetensors into m (names and shapes must match); returns as
// checkpoint_load.
int model_load_weights(Model* m, const char* model_path, char* err, size_t err_size);
