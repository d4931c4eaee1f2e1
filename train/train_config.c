#include "train/train_config.h"

#include <stdio.h>
#include <string.h>

const ConfigField train_config_schema[] = {
    {"run.name", CFG_STRING, "\"tipcap\"", NULL, "name of the run"},
    {"run.dir", CFG_STRING, "\"\"", NULL, "run directory for checkpoints, metrics.csv and loss.svg (\"\": runs/<name>)"},
    {"run.seed", CFG_INT, "1234", NULL, "seed of initialisation, shuffling, noise and prompt dropout"},
    {"run.device", CFG_STRING, "\"auto\"", "auto|cpu|cuda", "auto: the GPU when one is present"},
    {"run.precision", CFG_STRING, "\"bf16\"", "bf16|fp32", "activation/parameter copies on the GPU (master weights are fp32)"},

    {"data.corpus", CFG_STRING, NULL, NULL, "caption corpus (Karpathy dataset_*.json, COCO captions_*.json or {image: [captions]})"},
    {"data.train_split", CFG_STRING, "\"train\"", "train|val|test|all", "split whose captions train"},
    {"data.val_split", CFG_STRING, "\"val\"", "train|val|test|all|none", "split for the validation loss"},
    {"data.features", CFG_STRING, NULL, NULL, "HDF5 feature file with the captions' CLIP text embeddings"},
    {"data.val_features", CFG_STRING, "\"\"", NULL, "feature file holding the validation captions (\"\": data.features)"},
    {"data.entity_vocab", CFG_STRING, "\"\"", NULL, "entity vocabulary for prompts (\"\": the shipped VinVL 1848 classes)"},
    {"data.max_len", CFG_INT, "0", NULL, "caption tokens per sample; 0: the len_percentile of the corpus"},
    {"data.len_percentile", CFG_NUMBER, "99", NULL, "percentile of caption lengths used when max_len is 0"},

    {"mapping.setting", CFG_STRING, "\"text\"", "paired|web|unpaired|text", "data setting (must match the gap file's)"},
    {"mapping.gap", CFG_STRING, "\"\"", NULL, "gap file from tipcap-prep gap (\"\": isotropic noise sigma2 I)"},
    {"mapping.sigma2", CFG_NUMBER, "0.016", NULL, "isotropic noise variance when there is no gap file (CapDec's 0.016)"},
    {"mapping.noise", CFG_BOOL, "true", NULL, "inject the Gaussian gap in training (false: clean text embeddings)"},
    {"mapping.learnable", CFG_BOOL, "false", NULL, "learn mu and L, with a KL term to the gap file's Gaussian as prior"},
    {"mapping.kl_weight", CFG_NUMBER, "0.001", NULL, "weight of KL(N(mu, L L^T) || prior) when learnable"},

    {"prompts.entity_dropout", CFG_NUMBER, "0.4", NULL, "probability of dropping each entity of a caption in training"},
    {"prompts.prompt_dropout", CFG_NUMBER, "0.1", NULL, "probability of dropping a caption's whole prompt in training"},

    {"model.prefix_len", CFG_INT, "10", NULL, "K prefix tokens"},
    {"model.width", CFG_INT, "768", NULL, "C, the width of the decoder and the interaction encoder"},
    {"model.vocab", CFG_STRING, "\"gpt2\"", "gpt2|corpus", "decoder outputs: all GPT-2 tokens, or those of the training corpus (faster from scratch)"},
    {"model.max_len", CFG_INT, "64", NULL, "decoder positions (K + caption tokens must fit)"},
    {"model.dec_layers", CFG_INT, "12", NULL, "decoder layers"},
    {"model.dec_heads", CFG_INT, "12", NULL, "decoder heads"},
    {"model.int_layers", CFG_INT, "2", NULL, "prompt interaction encoder layers"},
    {"model.int_heads", CFG_INT, "12", NULL, "prompt interaction encoder heads"},
    {"model.map_layers", CFG_INT, "0", NULL, "0: MLP prefix projector; > 0: linear + transformer mapper of this many layers"},
    {"model.proj_hidden", CFG_INT, "3840", NULL, "hidden width of the MLP projector"},
    {"model.max_prompts", CFG_INT, "8", NULL, "M, prompt slots per caption"},
    {"model.decoder_init", CFG_STRING, "\"\"", NULL, "\"\": decoder from scratch; else a GPT-2 model.safetensors (Hugging Face)"},
    {"model.freeze_decoder", CFG_BOOL, "false", NULL, "keep the decoder's weights fixed"},

    {"train.batch_size", CFG_INT, "40", NULL, "global batch (split across data-parallel ranks)"},
    {"train.micro_batch", CFG_INT, "0", NULL, "rows per forward/backward (gradient accumulation); 0: the whole local batch"},
    {"train.steps", CFG_INT, "0", NULL, "optimiser steps; 0: epochs x steps per epoch"},
    {"train.epochs", CFG_INT, "10", NULL, "epochs when steps is 0"},
    {"train.lr", CFG_NUMBER, "2e-5", NULL, "peak learning rate"},
    {"train.min_lr_ratio", CFG_NUMBER, "0", NULL, "final learning rate as a fraction of the peak"},
    {"train.warmup_steps", CFG_INT, "5000", NULL, "linear warm-up steps"},
    {"train.schedule", CFG_STRING, "\"linear\"", "cosine|linear|constant", "decay after warm-up"},
    {"train.weight_decay", CFG_NUMBER, "0.01", NULL, "AdamW weight decay (matrices and embeddings only)"},
    {"train.beta1", CFG_NUMBER, "0.9", NULL, "AdamW beta1"},
    {"train.beta2", CFG_NUMBER, "0.999", NULL, "AdamW beta2"},
    {"train.eps", CFG_NUMBER, "1e-8", NULL, "AdamW epsilon"},
    {"train.grad_clip", CFG_NUMBER, "1.0", NULL, "clip the global gradient norm to this (0: off)"},
    {"train.label_smoothing", CFG_NUMBER, "0", NULL, "label smoothing of the cross-entropy"},
    {"train.val_every", CFG_INT, "500", NULL, "validation loss every N steps (0: only at the end)"},
    {"train.val_batches", CFG_INT, "0", NULL, "validation batches per evaluation (0: the whole split)"},
    {"train.checkpoint_every", CFG_INT, "1000", NULL, "checkpoint every N steps (and at the end)"},
    {"train.keep_checkpoints", CFG_INT, "3", NULL, "checkpoints kept (older ones are removed)"},
    {"train.log_every", CFG_INT, "10", NULL, "log line / metrics.csv row every N steps"},
};
const int train_config_schema_size = (int)(sizeof train_config_schema / sizeof *train_config_schema);

static void copy_string(char* dst, size_t cap, const char* src) { snprintf(dst, cap, "%s", src ? src : ""); }

int train_config_from(const Config* c, TrainConfig* tc, char* err, size_t err_size) {
    memset(tc, 0, sizeof *tc);
#define STR(field, key) copy_string(tc->field, sizeof tc->field, config_string(c, key))
    STR(name, "run.name");
    STR(dir, "run.dir");
    tc->seed = (uint64_t)config_int(c, "run.seed");
    STR(device, "run.device");
    STR(precision, "run.precision");
    STR(corpus, "data.corpus");
    STR(train_split, "data.train_split");
    STR(val_split, "data.val_split");
    STR(features, "data.features");
    STR(val_features, "data.val_features");
    STR(entity_vocab, "data.entity_vocab");
    tc->max_len = (int)config_int(c, "data.max_len");
    tc->len_percentile = config_number(c, "data.len_percentile");
    STR(setting, "mapping.setting");
    STR(gap, "mapping.gap");
    tc->sigma2 = config_number(c, "mapping.sigma2");
    tc->noise = config_bool(c, "mapping.noise");
    tc->learnable = config_bool(c, "mapping.learnable");
    tc->kl_weight = config_number(c, "mapping.kl_weight");
    tc->entity_dropout = config_number(c, "prompts.entity_dropout");
    tc->prompt_dropout = config_number(c, "prompts.prompt_dropout");
    ModelConfig* m = &tc->model;
    m->prefix_len = (int)config_int(c, "model.prefix_len");
    m->width = (int)config_int(c, "model.width");
    STR(vocab, "model.vocab");
    m->max_len = (int)config_int(c, "model.max_len");
    m->dec_layers = (int)config_int(c, "model.dec_layers");
    m->dec_heads = (int)config_int(c, "model.dec_heads");
    m->int_layers = (int)config_int(c, "model.int_layers");
    m->int_heads = (int)config_int(c, "model.int_heads");
    m->map_layers = (int)config_int(c, "model.map_layers");
    m->proj_hidden = (int)config_int(c, "model.proj_hidden");
    m->max_prompts = (int)config_int(c, "model.max_prompts");
    STR(decoder_init, "model.decoder_init");
    tc->freeze_decoder = config_bool(c, "model.freeze_decoder");
    tc->batch_size = (int)config_int(c, "train.batch_size");
    tc->micro_batch = (int)config_int(c, "train.micro_batch");
    tc->steps = config_int(c, "train.steps");
    tc->epochs = (int)config_int(c, "train.epochs");
    tc->lr = config_number(c, "train.lr");
    tc->min_lr_ratio = config_number(c, "train.min_lr_ratio");
    tc->warmup_steps = config_int(c, "train.warmup_steps");
    STR(schedule, "train.schedule");
    tc->weight_decay = config_number(c, "train.weight_decay");
    tc->beta1 = config_number(c, "train.beta1");
    tc->beta2 = config_number(c, "train.beta2");
    tc->eps = config_number(c, "train.eps");
    tc->grad_clip = config_number(c, "train.grad_clip");
    tc->label_smoothing = config_number(c, "train.label_smoothing");
    tc->val_every = config_int(c, "train.val_every");
    tc->val_batches = config_int(c, "train.val_batches");
    tc->checkpoint_every = config_int(c, "train.checkpoint_every");
    tc->keep_checkpoints = (int)config_int(c, "train.keep_checkpoints");
    tc->log_every = config_int(c, "train.log_every");
#undef STR
    if (!tc->dir[0]) snprintf(tc->dir, sizeof tc->dir, "runs/%s", tc->name);

    struct { const char* key; double value, lo, hi; } ranges[] = {
        {"model.prefix_len", m->prefix_len, 1, 256},   {"model.width", m->width, 8, 8192},
        {"model.max_len", m->max_len, 2, 1e5},
        {"model.dec_layers", m->dec_layers, 1, 256},   {"model.dec_heads", m->dec_heads, 1, 256},
        {"model.int_layers", m->int_layers, 0, 256},   {"model.int_heads", m->int_heads, 1, 256},
        {"model.map_layers", m->map_layers, 0, 256},   {"model.max_prompts", m->max_prompts, 0, 64},
        {"train.batch_size", tc->batch_size, 1, 1e7},  {"train.micro_batch", tc->micro_batch, 0, 1e7},
        {"train.steps", (double)tc->steps, 0, 1e12},   {"train.epochs", tc->epochs, 1, 1e6},
        {"train.lr", tc->lr, 0, 10},                   {"train.min_lr_ratio", tc->min_lr_ratio, 0, 1},
        {"train.beta1", tc->beta1, 0, 0.999999},       {"train.beta2", tc->beta2, 0, 0.99999999},
        {"train.eps", tc->eps, 0, 1},                  {"train.grad_clip", tc->grad_clip, 0, 1e9},
        {"train.label_smoothing", tc->label_smoothing, 0, 0.999}, {"train.keep_checkpoints", tc->keep_checkpoints, 1, 1e6},
        {"prompts.entity_dropout", tc->entity_dropout, 0, 1}, {"prompts.prompt_dropout", tc->prompt_dropout, 0, 1},
        {"mapping.sigma2", tc->sigma2, 0, 100},        {"mapping.kl_weight", tc->kl_weight, 0, 1e6},
        {"data.len_percentile", tc->len_percentile, 1, 100}, {"data.max_len", tc->max_len, 0, 1e5},
        {"train.warmup_steps", (double)tc->warmup_steps, 0, 1e12}, {"train.log_every", (double)tc->log_every, 1, 1e12},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
        if (!(ranges[i].value >= ranges[i].lo && ranges[i].value <= ranges[i].hi)) {
            snprintf(err, err_size, "%s: %g is outside [%g, %g]", ranges[i].key, ranges[i].value, ranges[i].lo, ranges[i].hi);
            return -1;
        }
    if (m->map_layers == 0 && m->proj_hidden < 1) {
        snprintf(err, err_size, "model.proj_hidden: the MLP projector needs a hidden width >= 1");
        return -1;
    }
    if (m->width % m->dec_heads || m->width % m->int_heads) {
        snprintf(err, err_size, "model.width: %d is not a multiple of model.dec_heads (%d) and model.int_heads (%d)",
                 m->width, m->dec_heads, m->int_heads);
        return -1;
    }
    if (tc->decoder_init[0] && strcmp(tc->vocab, "gpt2")) {
        snprintf(err, err_size, "model.decoder_init needs model.vocab = \"gpt2\" (GPT-2's weights cover all its tokens)");
        return -1;
    }
    if (tc->learnable && !tc->noise) {
        snprintf(err, err_size, "mapping.learnable needs mapping.noise");
        return -1;
    }
    return 0;
}
