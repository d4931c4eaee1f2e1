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

// The exit status of a run stopped by SIGTERM or SIGUSR1 (a Slurm preemption or time limit): it
// finished the step under way and wrote a checkpoint; --resume continues it exactly. 75 is
// sysexits.h's EX_TEMPFAIL ("try again later"); scripts/sweep's job script requeues on it.
#define TRAIN_EXIT_PREEMPTED 75

// Runs the whole training; returns the process exit status (0, 1 on an error, TRAIN_EXIT_PREEMPTED).
int trainer_run(const TrainConfig* tc, const TrainOptions* opt, Dist* dist);
