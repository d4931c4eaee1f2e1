// The training loop of tipcap-train: data, model and optimiser set up from a TrainConfig, then
// steps of (micro-batches -> gradients -> all-reduce -> AdamW), with validation, metrics,
// checkpoints and exact resume.
#pragma once
#include "train/dist.h"
#include "train/train_config.h"

typedef struct {
    const char* resume_dir;    // continue the run in this directory (its newest checkpoint)
    const char* config_json;   // the resolved config, saved with the run and in checkpoints
} TrainOptions;

// Runs the whole training; returns the process exit status.
int trainer_run(const TrainConfig* tc, const TrainOptions* opt, Dist* dist);
