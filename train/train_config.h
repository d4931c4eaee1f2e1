// Training configuration: the schema of every key tipcap-train accepts (docs/CONFIG.md is
// generated from it: `tipcap-train --print-config-doc`) and the typed struct the trainer reads.
#pragma once
#include <stdint.h>

#include "common/config.h"
#include "train/model.h"

typedef struct {
    // run
    char name[128];
    char dir[1024];          // run directory ("" -> runs/<name>)
    uint64_t seed;
    char device[16];         // auto | cpu | cuda
    char precision[16];      // bf16 | fp32 (GPU; the CPU is always fp32)
    // data
    char corpus[1024];
    char train_split[16];
    char val_split[16];      // "none" for no validation
    char features[1024];
    char val_features[1024]; // "" -> features
    char entity_vocab[1024]; // "" -> the shipped VinVL vocabulary
    int max_len;             // caption tokens L; 0 -> the len_percentile of the corpus
    double len_percentile;
    // mapping
    char setting[16];        // paired | web | unpaired | text (recorded; must match the gap file)
    char gap[1024];          // gap file; "" -> isotropic sigma2 I
    double sigma2;
    int noise;               // 0: train on clean text embeddings (ablation)
    int learnable;           // learn mu and L with a KL term to the prior
    double kl_weight;
    // prompts
    double entity_dropout;
    double prompt_dropout;
    // model
    ModelConfig model;       // vocab_size is set from `vocab` once the corpus is known
    char vocab[16];          // gpt2 | corpus
    char decoder_init[1024]; // "" -> from scratch; else a GPT-2 model.safetensors
    int freeze_decoder;
    // optimisation
    int batch_size;          // global batch G
    int micro_batch;         // rows per forward/backward; 0 -> the whole local batch
    long steps;              // 0 -> epochs * steps per epoch
    int epochs;
    double lr, min_lr_ratio, weight_decay, beta1, beta2, eps, grad_clip, label_smoothing;
    long warmup_steps;
    char schedule[16];       // cosine | linear | constant
    long val_every;
    long val_batches;        // 0 -> the whole validation split
    long checkpoint_every;
    int keep_checkpoints;
    long log_every;
} TrainConfig;

extern const ConfigField train_config_schema[];
extern const int train_config_schema_size;

// Fills tc from a validated Config. Returns 0, or -1 with a message (cross-key checks).
int train_config_from(const Config* cfg, TrainConfig* tc, char* err, size_t err_size);
