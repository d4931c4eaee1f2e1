#include "train/trainer.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/check.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/timer.h"
#include "data/corpus.h"
#include "data/dataset.h"
#include "data/entities.h"
#include "data/features.h"
#include "data/gap.h"
#include "data/tokenizer.h"
#include "kernels/philox.h"
#include "train/checkpoint.h"
#include "train/gpt2_import.h"
#include "train/model.h"
#include "train/report.h"
#include "train/token_vocab.h"

// Philox streams: each random decision is keyed by (run seed ^ purpose, step, sample).
#define KEY_NOISE 0x6e6f697365ull     // gap noise z
#define KEY_DROPOUT 0x64726f70ull     // entity and prompt dropout
#define KEY_VAL_NOISE 0x76616c6eull   // validation noise (the same every evaluation)

typedef struct {
    const TrainConfig* tc;
    Dist* dist;
    Backend* be;
    Model* model;
    Corpus corpus;
    FeatureStore features;
    FeatureStore val_features;  // when data.val_features names another file
    Tokenizer* tok;
    EntityVocab vocab;
    TokenVocab tokens;        // the decoder's output vocabulary (GPT-2 ids)
    Dataset train, val;
    int have_val;
    TrainIterator iter;
    Batch batch;              // this rank's part of the global batch
    // ModelBatch assembly buffers (one micro-batch)
    int* prompts;             // [micro, M]
    int* bag_offsets;         // [micro*M + 1]
    int* bag_ids;
    int bag_ids_cap;
    GapPrior prior;           // the KL prior of the learnable Gaussian
    long total_steps;
    int micro;                // rows per forward/backward
} Trainer;

static double lr_at(const TrainConfig* tc, long step, long total) {
    if (step < tc->warmup_steps) return tc->lr * (double)(step + 1) / (double)tc->warmup_steps;
    double span = (double)(total - tc->warmup_steps);
    double p = span > 0 ? (double)(step - tc->warmup_steps) / span : 1.0;
    if (p > 1) p = 1;
    double lo = tc->min_lr_ratio;
    if (!strcmp(tc->schedule, "cosine")) return tc->lr * (lo + (1 - lo) * 0.5 * (1 + cos(M_PI * p)));
    if (!strcmp(tc->schedule, "linear")) return tc->lr * (1 - (1 - lo) * p);
    return tc->lr;
}

// Rows [row_begin, row_end) of t->batch as a ModelBatch; prompts from the rows' entities with
// dropout keyed by (step, global sample index) unless `dropout` is 0.
static ModelBatch make_batch(Trainer* t, int row_begin, int row_end, long step, uint64_t global_row0, int dropout,
                             int noise, uint64_t noise_seed) {
    const TrainConfig* tc = t->tc;
    const Batch* b = &t->batch;
    int K = tc->model.prefix_len, M = tc->model.max_prompts, L = b->L;
    int rows = row_end - row_begin;
    uint64_t drop_seed = tc->seed ^ KEY_DROPOUT;
    int n_bags = 0, n_ids = 0;
    t->bag_offsets[0] = 0;
    for (int r = 0; r < rows; r++) {
        int row = row_begin + r;
        uint64_t sample = global_row0 + (uint64_t)r;
        int used = 0;
        int drop_all = dropout && philox_uniform(drop_seed, (uint64_t)step, sample * 64 + 63) < tc->prompt_dropout;
        for (int e = b->entity_offsets[row]; e < b->entity_offsets[row + 1] && used < M && !drop_all; e++) {
            int k = e - b->entity_offsets[row];
            if (dropout && philox_uniform(drop_seed, (uint64_t)step, sample * 64 + (uint64_t)(k % 63)) < tc->entity_dropout)
                continue;
            int entry = b->entities[e];
            int begin = t->vocab.token_offsets[entry], end = t->vocab.token_offsets[entry + 1];
            if (n_ids + (end - begin) > t->bag_ids_cap) {
                t->bag_ids_cap = 2 * (n_ids + (end - begin));
                t->bag_ids = reallocCheck(t->bag_ids, sizeof(int) * (size_t)t->bag_ids_cap);
            }
            for (int j = begin; j < end; j++) t->bag_ids[n_ids++] = t->vocab.tokens[j];
            t->prompts[r * M + used++] = n_bags;
            t->bag_offsets[++n_bags] = n_ids;
        }
        for (int j = used; j < M; j++) t->prompts[r * M + j] = -1;
    }
    ModelBatch mb = {
        .B = rows,
        .L = L,
        .emb = b->text_emb + (size_t)row_begin * b->D,
        .tokens = b->tokens + (size_t)row_begin * L,
        .targets = b->targets + (size_t)row_begin * (K + L),
        .M = M,
        .prompts = t->prompts,
        .n_bags = n_bags,
        .bag_offsets = t->bag_offsets,
        .bag_ids = t->bag_ids,
        .gap_noise = noise,
        .noise_seed = noise_seed,
        .noise_stream = (uint64_t)step,
        .row0 = global_row0,
    };
    return mb;
}

// GPT-2 ids of a filled batch -> the model's token ids (every id is in the vocabulary by construction).
static void map_batch(Trainer* t) {
    Batch* b = &t->batch;
    if (token_vocab_encode(&t->tokens, b->tokens, (size_t)b->B * b->L) >= 0 ||
        token_vocab_encode(&t->tokens, b->targets, (size_t)b->B * (b->K + b->L)) >= 0)
        FATAL("a caption token is not in the decoder's vocabulary");
}

static long count_targets(const Batch* b) {
    long n = 0, per_row = b->K + b->L;
    for (long i = 0; i < (long)b->B * per_row; i++) n += b->targets[i] >= 0;
    return n;
}

// The gap Gaussian: the gap file's estimate, or mu = 0, Sigma = sigma2 I without one.
static void load_gap(const TrainConfig* tc, int D, GapEstimate* g) {
    char err[1024];
    if (!tc->gap[0]) {
        GapOptions opt = gap_options_default();
        if (gap_estimate_text(g, D, tc->sigma2, NULL, &opt, err, sizeof err)) FATAL("%s", err);
        return;
    }
    if (gap_read(tc->gap, g, err, sizeof err)) FATAL("%s", err);
    if (g->dim != D) FATAL("%s: the gap has D = %d, the features %s have D = %d", tc->gap, g->dim, tc->features, D);
    if (strcmp(gap_setting_name(g->setting), tc->setting))
        FATAL("%s: the gap file was estimated for setting '%s', the config says mapping.setting = '%s'", tc->gap,
              gap_setting_name(g->setting), tc->setting);
}

static void setup_data(Trainer* t) {
    const TrainConfig* tc = t->tc;
    char err[2048];
    t->tok = tokenizer_load_default();
    if (corpus_load(tc->corpus, SPLIT_TRAIN, &t->corpus, err, sizeof err)) FATAL("%s", err);
    if (features_read(tc->features, &t->features, err, sizeof err)) FATAL("%s", err);
    char* vocab_path = tc->entity_vocab[0] ? strdupCheck(tc->entity_vocab) : entity_vocab_default_path();
    if (entity_vocab_load(vocab_path, NULL, t->tok, &t->vocab, err, sizeof err)) FATAL("%s", err);
    free(vocab_path);
    DatasetOptions opt = DATASET_OPTIONS_DEFAULT;
    opt.max_len = tc->max_len;
    opt.len_percentile = tc->len_percentile;
    if (dataset_build(&t->corpus, (Split)split_parse(tc->train_split), &t->features, t->tok, &t->vocab, &opt, &t->train,
                      err, sizeof err))
        FATAL("%s", err);
    t->have_val = strcmp(tc->val_split, "none") != 0;
    if (t->have_val) {
        opt.max_len = t->train.max_len;
        const FeatureStore* vf = &t->features;
        if (tc->val_features[0] && strcmp(tc->val_features, tc->features)) {
            if (features_read(tc->val_features, &t->val_features, err, sizeof err)) FATAL("%s", err);
            if (t->val_features.dim != t->features.dim)
                FATAL("%s: D = %d, but %s has D = %d", tc->val_features, t->val_features.dim, tc->features, t->features.dim);
            vf = &t->val_features;
        }
        if (dataset_build(&t->corpus, (Split)split_parse(tc->val_split), vf, t->tok, &t->vocab, &opt, &t->val, err,
                          sizeof err))
            FATAL("%s", err);
        if (t->val.n == 0) {
            dataset_free(&t->val);
            t->have_val = 0;
        }
    }
    int world = t->dist->world;
    if (tc->batch_size % world) FATAL("train.batch_size %d is not a multiple of the %d ranks", tc->batch_size, world);
    if (train_iter_init(&t->iter, &t->train, tc->seed, tc->batch_size, t->dist->rank, world, err, sizeof err))
        FATAL("%s", err);
    int local = tc->batch_size / world;
    t->micro = tc->micro_batch > 0 ? tc->micro_batch : local;
    if (local % t->micro) FATAL("train.micro_batch %d does not divide the local batch %d", t->micro, local);
    batch_alloc(&t->batch, local, tc->model.prefix_len, &t->train);
    int M = tc->model.max_prompts;
    t->prompts = mallocCheck(sizeof(int) * (size_t)(local * M + 1));
    t->bag_offsets = mallocCheck(sizeof(int) * (size_t)(local * M + 1));
    t->bag_ids_cap = local * M * 8 + 16;
    t->bag_ids = mallocCheck(sizeof(int) * (size_t)t->bag_ids_cap);
    if (!strcmp(tc->vocab, "corpus")) token_vocab_from_corpus(&t->tokens, &t->train, &t->vocab);
    else token_vocab_full(&t->tokens);
    if (token_vocab_encode(&t->tokens, t->vocab.tokens, (size_t)t->vocab.token_offsets[t->vocab.n]) >= 0)
        FATAL("an entity token is not in the decoder's vocabulary");
    long per_epoch = train_iter_steps_per_epoch(&t->iter);
    t->total_steps = tc->steps > 0 ? tc->steps : per_epoch * tc->epochs;
    if (t->dist->rank == 0)
        LOG_INFO("data: %d training captions (L = %d tokens, %d truncated), %d validation; %ld steps per epoch, %ld steps",
                 t->train.n, t->train.max_len, t->train.n_truncated, t->have_val ? t->val.n : 0, per_epoch, t->total_steps);
}

// The backend dist_init agreed on with the other ranks (it has selected the GPU).
static Backend* choose_backend(const TrainConfig* tc, const Dist* dist) {
    if (dist->gpu < 0) return backend_cpu_create();
    Backend* be = backend_cuda_create(strcmp(tc->precision, "fp32") ? DTYPE_BF16 : DTYPE_F32);
    if (!be) FATAL("rank %d: GPU %d is selected, but the CUDA backend did not start", dist->rank, dist->gpu);
    return be;
}

static void setup_model(Trainer* t) {
    const TrainConfig* tc = t->tc;
    ModelConfig mc = tc->model;
    mc.clip_dim = t->features.dim;
    mc.vocab_size = t->tokens.n;
    int local = tc->batch_size / t->dist->world;
    t->model = model_create(t->be, &mc, t->micro < local ? t->micro : local, t->train.max_len);
    model_set_vocab(t->model, t->tokens.ids);
    model_init_random(t->model, tc->seed);
    if (tc->decoder_init[0]) {
        char err[1024];
        if (model_load_gpt2(t->model, tc->decoder_init, err, sizeof err)) FATAL("%s", err);
    }
    GapEstimate gap;
    load_gap(tc, mc.clip_dim, &gap);
    model_set_gap(t->model, gap.mu, gap.chol);
    if (tc->learnable) {  // the estimate is also the KL prior
        char err[1024];
        if (gap_prior_init(&t->prior, &gap, err, sizeof err)) FATAL("%s", err);
    }
    gap_free(&gap);
    model_set_trainable(t->model, tc->learnable, !tc->freeze_decoder);
    model_set_label_smoothing(t->model, (float)tc->label_smoothing);
    if (t->dist->rank == 0)
        LOG_INFO("model: %.2fM parameters on %s (%s), D = %d, K = %d, C = %d, %d decoder layers",
                 (double)model_total_params(t->model) / 1e6, t->be->name, t->be->act == DTYPE_BF16 ? "bf16" : "fp32",
                 mc.clip_dim,
                 mc.prefix_len, mc.width, mc.dec_layers);
}

// The KL term of the learnable Gaussian: adds kl_weight * dKL/d(mu, L) to the gradients
// (host, double precision: the Gaussian is D + D^2 numbers). Returns the KL.
static double add_kl_gradient(Trainer* t) {
    Model* m = t->model;
    Backend* be = t->be;
    const ParamInfo* pmu = model_find_param(m, "gap.mu");
    const ParamInfo* pl = model_find_param(m, "gap.chol");
    size_t n = pmu->numel + pl->numel;  // gap.mu and gap.chol are adjacent
    float* params = mallocCheck(sizeof(float) * n);
    float* grads = mallocCheck(sizeof(float) * n);
    model_get_range(m, pmu->offset, n, params);
    be->download(be, grads, model_grads(m) + pmu->offset, sizeof(float) * n);
    double kl = gap_kl(&t->prior, params, params + pmu->numel, (float)t->tc->kl_weight, grads, grads + pmu->numel);
    be->upload(be, model_grads(m) + pmu->offset, grads, sizeof(float) * n);
    free(grads);
    free(params);
    return kl;
}

// Mean token loss over the validation split (or its first val_batches batches), all ranks.
static double validate(Trainer* t) {
    const TrainConfig* tc = t->tc;
    int64_t batches = dataset_val_batches(&t->val, tc->batch_size);
    if (tc->val_batches > 0 && tc->val_batches < batches) batches = tc->val_batches;
    double sum = 0, count = 0;
    for (int64_t i = 0; i < batches; i++) {
        dataset_val_batch(&t->val, i, tc->batch_size, t->dist->rank, t->dist->world, &t->batch);
        map_batch(t);
        uint64_t row0 = (uint64_t)i * (uint64_t)tc->batch_size +
                        (uint64_t)(t->dist->rank * (tc->batch_size / t->dist->world));
        for (int r = 0; r < t->batch.B; r += t->micro) {
            int end = r + t->micro < t->batch.B ? r + t->micro : t->batch.B;
            ModelBatch mb = make_batch(t, r, end, 0, row0 + (uint64_t)r, 0, tc->noise, tc->seed ^ KEY_VAL_NOISE);
            long n;
            sum += model_forward_loss(t->model, &mb, &n);
            count += (double)n;
        }
    }
    sum = dist_sum_double(t->dist, sum);
    count = dist_sum_double(t->dist, count);
    return count > 0 ? sum / count : NAN;
}

// SIGTERM or SIGUSR1 asks the run to stop after the step under way, with a checkpoint. The handler
// only records the signal; more of them change nothing (Slurm may send both). SIGKILL ends the
// process at once, and the checkpoints already written stay intact.
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static void catch_stop_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;  // interrupted system calls go on
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

static void save_checkpoint(Trainer* t, long step, double elapsed_s, const char* config_json) {
    if (t->dist->rank != 0) return;
    TrainState st = {.step = step, .data = train_iter_position(&t->iter), .seed = t->tc->seed,
                     .elapsed_s = elapsed_s, .clip_model = t->features.clip_model, .config_json = (char*)config_json};
    char err[2048];
    if (checkpoint_save(t->tc->dir, t->model, &st, t->tc->keep_checkpoints, err, sizeof err)) FATAL("%s", err);
}

static void trainer_free(Trainer* t) {
    model_free(t->model);
    t->be->destroy(t->be);
    batch_free(&t->batch);
    train_iter_free(&t->iter);
    dataset_free(&t->train);
    if (t->have_val) dataset_free(&t->val);
    entity_vocab_free(&t->vocab);
    token_vocab_free(&t->tokens);
    features_free(&t->features);
    if (t->val_features.dim) features_free(&t->val_features);
    corpus_free(&t->corpus);
    tokenizer_free(t->tok);
    free(t->prompts);
    free(t->bag_offsets);
    free(t->bag_ids);
    if (t->tc->learnable) gap_prior_free(&t->prior);
}

// Logs "KEY: OLD -> NEW" for every leaf of two configs' JSON that differs; returns how many.
static int log_config_changes(const cJSON* old_obj, const cJSON* new_obj, const char* prefix, const char* path) {
    int n = 0;
    for (const cJSON* item = new_obj->child; item; item = item->next) {
        char key[512];
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", item->string);
        const cJSON* was = cJSON_GetObjectItemCaseSensitive(old_obj, item->string);
        if (cJSON_IsObject(item) && cJSON_IsObject(was)) {
            n += log_config_changes(was, item, key, path);
        } else if (!was || !cJSON_Compare(was, item, 1)) {
            char* before = was ? cJSON_PrintUnformatted(was) : NULL;
            char* now = cJSON_PrintUnformatted(item);
            LOG_INFO("%s: %s: %s -> %s", path, key, before ? before : "(absent)", now);
            free(before);
            free(now);
            n++;
        }
    }
    return n;
}

// RUN_DIR/config.json records the config the run uses from now on; the values it held before
// are in the log.
static void write_run_config(const char* run_dir, const char* config_json) {
    char path[1100];
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    FILE* f = fopen(path, "rb");
    if (f) {
        fclose(f);
        char* text = readFileCheck(path, NULL);
        cJSON* old_cfg = cJSON_Parse(text);
        cJSON* new_cfg = cJSON_Parse(config_json);
        int changed = !old_cfg || log_config_changes(old_cfg, new_cfg, "", path) > 0;
        if (!old_cfg) LOG_WARN("%s is not JSON: replaced by the config of this run", path);
        cJSON_Delete(old_cfg);
        cJSON_Delete(new_cfg);
        free(text);
        if (!changed) return;
    }
    atomic_write_file(path, config_json, strlen(config_json));
}

int trainer_run(const TrainConfig* tc, const TrainOptions* opt, Dist* dist) {
    Trainer t;
    memset(&t, 0, sizeof t);
    t.tc = tc;
    t.dist = dist;
    double t_start = timer_now();
    catch_stop_signals();
    if (!opt->resume_dir) {  // a new run never writes into an earlier run's directory
        char ckpt[4200];
        if (checkpoint_latest(tc->dir, ckpt, sizeof ckpt))
            FATAL("run.dir %s already holds a run (newest checkpoint %s): --resume %s continues it; "
                  "another run.dir starts a new one", tc->dir, ckpt, tc->dir);
    }
    setup_data(&t);
    t.be = choose_backend(tc, dist);
    dist_setup_backend(dist);
    setup_model(&t);

    long step = 0;
    double elapsed0 = 0;  // seconds of training before this invocation
    if (opt->resume_dir) {
        char ckpt[4200], err[2048];
        if (!checkpoint_latest(tc->dir, ckpt, sizeof ckpt)) {
            if (dist->rank == 0) LOG_INFO("%s: no checkpoint yet, starting from step 0", tc->dir);
        } else {
            TrainState st;
            int rc = checkpoint_load(ckpt, t.model, &st, err, sizeof err);
            if (rc == CHECKPOINT_MISMATCH)
                FATAL("%s\n(the checkpoint is fine and left as it is: resume with the model config it was trained with, "
                      "without --set or --config changing these keys; another run.dir starts a new run)", err);
            if (rc) FATAL("%s\n(the checkpoint is left as it is; remove that directory to resume from the one before)", err);
            if (st.seed != tc->seed) FATAL("%s: saved with seed %llu, the config says %llu", ckpt,
                                           (unsigned long long)st.seed, (unsigned long long)tc->seed);
            if (train_iter_seek(&t.iter, st.data, err, sizeof err)) FATAL("%s: %s", ckpt, err);
            step = st.step;
            elapsed0 = st.elapsed_s;
            free(st.config_json);
            if (dist->rank == 0) LOG_INFO("resumed from %s (step %ld)", ckpt, step);
        }
    }
    long step0 = step;
    if (step >= t.total_steps) {  // nothing to train: the run directory is left as it is
        if (dist->rank == 0)
            LOG_INFO("%s: the run is finished: it has done %ld steps of %ld; nothing to train (--set train.steps=N "
                     "with N > %ld continues it)", tc->dir, step, t.total_steps, step);
        trainer_free(&t);
        return 0;
    }
    if (dist->rank == 0) {
        if (make_directories(tc->dir))
            FATAL("%s: cannot create the run directory: %s", tc->dir, strerror(errno));
        write_run_config(tc->dir, opt->config_json);
    }

    Report report;
    if (dist->rank == 0) report_open(&report, tc->dir, t.total_steps, step);
    int local = tc->batch_size / dist->world;
    // Test hook: TIPCAP_FAULT_NAN_STEP=k makes step k's loss NaN, to exercise the stop below.
    const char* fault = getenv("TIPCAP_FAULT_NAN_STEP");
    long nan_step = fault ? atol(fault) : 0;
    double t_last = timer_now();
    long tokens_since = 0;
    int status = 0;
    while (step < t.total_steps) {
        int64_t epoch = train_iter_position(&t.iter).epoch;
        uint64_t global_row0 = (uint64_t)step * (uint64_t)tc->batch_size + (uint64_t)(dist->rank * local);
        train_iter_next(&t.iter, &t.batch);
        map_batch(&t);
        double n_targets = dist_sum_double(dist, (double)count_targets(&t.batch));
        model_zero_grad(t.model);
        double loss_sum = 0;
        for (int r = 0; r < t.batch.B; r += t.micro) {
            ModelBatch mb = make_batch(&t, r, r + t.micro, step, global_row0 + (uint64_t)r, 1, tc->noise,
                                       tc->seed ^ KEY_NOISE);
            long n;
            loss_sum += model_forward_backward(t.model, &mb, (float)(1.0 / n_targets), &n);
        }
        dist_allreduce_sum(dist, t.be, model_grads(t.model), model_total_params(t.model));
        double loss = dist_sum_double(dist, loss_sum) / n_targets;
        if (step + 1 == nan_step) loss = NAN;
        if (!isfinite(loss)) {
            if (dist->rank == 0)
                LOG_ERROR("loss is %g at step %ld (epoch %lld, batch of samples starting at data position %lld): stopping; "
                          "the last good checkpoint is kept", loss, step + 1, (long long)epoch,
                          (long long)train_iter_position(&t.iter).cursor - tc->batch_size);
            status = 1;
            break;
        }
        double kl = tc->learnable ? add_kl_gradient(&t) : NAN;
        double lr = lr_at(tc, step, t.total_steps);
        double norm = model_adamw_step(t.model, (float)lr, (float)tc->beta1, (float)tc->beta2, (float)tc->eps,
                                       (float)tc->weight_decay, (float)tc->grad_clip, (int)(step + 1));
        step++;
        tokens_since += (long)n_targets;

        int last = step == t.total_steps;
        int do_val = t.have_val && ((tc->val_every > 0 && step % tc->val_every == 0) || last);
        double val_loss = do_val ? validate(&t) : NAN;
        if (dist->rank == 0 && (step % tc->log_every == 0 || last || do_val)) {
            double now = timer_now();
            MetricsRow row = {.step = step, .epoch = (int)epoch, .loss = loss, .val_loss = val_loss, .lr = lr,
                              .grad_norm = norm, .tokens_per_s = (double)tokens_since / (now - t_last),
                              .elapsed_s = elapsed0 + now - t_start, .kl = kl};
            report_row(&report, &row);
            report_progress(&report, &row, do_val);
            t_last = now;
            tokens_since = 0;
        }
        int saved = (tc->checkpoint_every > 0 && step % tc->checkpoint_every == 0) || last;
        if (saved) save_checkpoint(&t, step, elapsed0 + timer_now() - t_start, opt->config_json);
        // Every rank stops at the same step, whichever of them got the signal.
        if (!last && dist_sum_double(dist, (double)stop_signal) > 0) {
            if (!saved) save_checkpoint(&t, step, elapsed0 + timer_now() - t_start, opt->config_json);
            if (dist->rank == 0)
                LOG_INFO("stopped by %s after step %ld of %ld, with a checkpoint: exit status %d; "
                         "--resume %s continues the run",
                         stop_signal == SIGUSR1 ? "SIGUSR1" : stop_signal == SIGTERM ? "SIGTERM" : "a signal to another rank",
                         step, t.total_steps, TRAIN_EXIT_PREEMPTED, tc->dir);
            status = TRAIN_EXIT_PREEMPTED;
            break;
        }
    }
    if (dist->rank == 0) {
        report_close(&report);
        char csv[4200], svg[4200], err[1024];
        snprintf(csv, sizeof csv, "%s/metrics.csv", tc->dir);
        snprintf(svg, sizeof svg, "%s/loss.svg", tc->dir);
        const char* csvs[1] = {csv};
        const char* labels[1] = {tc->name};
        if (report_plot_svg(csvs, labels, 1, svg, tc->name, err, sizeof err)) LOG_WARN("%s", err);
        double now = timer_now();
        if (status == 0 && step == t.total_steps)
            LOG_INFO("done: %ld steps in %.1f s now (steps %ld to %ld); the run: %ld steps in %.1f s; run directory %s",
                     step - step0, now - t_start, step0 + 1, step, step, elapsed0 + now - t_start, tc->dir);
    }
    trainer_free(&t);
    return status;
}
