#include "train/checkpoint.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/check.h"
#include "common/log.h"
#include "common/paths.h"
#include "train/safetensors.h"

static const char* model_config_json(const ModelConfig* c) {
    static char buf[512];
    snprintf(buf, sizeof buf,
             "{\"clip_dim\": %d, \"prefix_len\": %d, \"width\": %d, \"vocab_size\": %d, \"max_len\": %d, "
             "\"dec_layers\": %d, \"dec_heads\": %d, \"int_layers\": %d, \"int_heads\": %d, \"map_layers\": %d, "
             "\"proj_hidden\": %d, \"max_prompts\": %d}",
             c->clip_dim, c->prefix_len, c->width, c->vocab_size, c->max_len, c->dec_layers, c->dec_heads,
             c->int_layers, c->int_heads, c->map_layers, c->proj_hidden, c->max_prompts);
    return buf;
}

static int parse_model_config(const char* json, ModelConfig* c) {
    cJSON* root = cJSON_Parse(json);
    if (!root) return -1;
    struct { const char* key; int* field; } fields[] = {
        {"clip_dim", &c->clip_dim}, {"prefix_len", &c->prefix_len}, {"width", &c->width},
        {"vocab_size", &c->vocab_size}, {"max_len", &c->max_len}, {"dec_layers", &c->dec_layers},
        {"dec_heads", &c->dec_heads}, {"int_layers", &c->int_layers}, {"int_heads", &c->int_heads},
        {"map_layers", &c->map_layers}, {"proj_hidden", &c->proj_hidden}, {"max_prompts", &c->max_prompts},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        cJSON* v = cJSON_GetObjectItemCaseSensitive(root, fields[i].key);
        if (!cJSON_IsNumber(v)) rc = -1;
        else *fields[i].field = v->valueint;
    }
    cJSON_Delete(root);
    return rc;
}

static int write_model(Model* m, const float* host, const char* clip_model, const char* path, char* err,
                       size_t err_size) {
    SafeTensorsWriter* w = safetensors_writer_new();
    for (int i = 0; i < model_num_params(m); i++) {
        const ParamInfo* p = model_param(m, i);
        safetensors_writer_add(w, p->name, ST_F32, p->ndim, p->shape, host + p->offset);
    }
    int64_t vocab_shape[1] = {model_config(m)->vocab_size};
    safetensors_writer_add(w, "decoder.vocab", ST_I32, 1, vocab_shape, model_vocab(m));
    safetensors_writer_meta(w, "format", "pt");
    safetensors_writer_meta(w, "tipcap_model_config", model_config_json(model_config(m)));
    safetensors_writer_meta(w, "clip_model", clip_model ? clip_model : "");
    int rc = safetensors_writer_write(w, path, err, err_size);
    safetensors_writer_free(w);
    return rc;
}

static int write_state(const float* adam_m, const float* adam_v, size_t n, const TrainState* st, const char* path,
                       char* err, size_t err_size) {
    SafeTensorsWriter* w = safetensors_writer_new();
    int64_t shape[1] = {(int64_t)n};
    safetensors_writer_add(w, "adam.m", ST_F32, 1, shape, adam_m);
    safetensors_writer_add(w, "adam.v", ST_F32, 1, shape, adam_v);
    char buf[64];
    snprintf(buf, sizeof buf, "%ld", st->step);
    safetensors_writer_meta(w, "step", buf);
    snprintf(buf, sizeof buf, "%" PRId64, st->data.epoch);
    safetensors_writer_meta(w, "data_epoch", buf);
    snprintf(buf, sizeof buf, "%" PRId64, st->data.cursor);
    safetensors_writer_meta(w, "data_cursor", buf);
    snprintf(buf, sizeof buf, "%" PRIu64, st->seed);
    safetensors_writer_meta(w, "seed", buf);
    snprintf(buf, sizeof buf, "%.3f", st->elapsed_s);
    safetensors_writer_meta(w, "elapsed_s", buf);
    safetensors_writer_meta(w, "config", st->config_json ? st->config_json : "{}");
    int rc = safetensors_writer_write(w, path, err, err_size);
    safetensors_writer_free(w);
    return rc;
}

static void fsync_path(const char* path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

static int remove_tree(const char* dir) {
    DIR* d = opendir(dir);
    if (!d) return -1;
    struct dirent* e;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    return rmdir(dir);
}

// Checkpoint directory names step_<digits>, sorted by step; returns how many.
static int list_checkpoints(const char* ckpt_root, long** steps_out) {
    DIR* d = opendir(ckpt_root);
    *steps_out = NULL;
    if (!d) return 0;
    int n = 0, cap = 0;
    long* steps = NULL;
    struct dirent* e;
    while ((e = readdir(d))) {
        char* end;
        if (strncmp(e->d_name, "step_", 5)) continue;
        long s = strtol(e->d_name + 5, &end, 10);
        if (*end || end == e->d_name + 5) continue;
        if (n == cap) steps = reallocCheck(steps, (size_t)(cap = cap ? 2 * cap : 16) * sizeof(long));
        steps[n++] = s;
    }
    closedir(d);
    for (int i = 1; i < n; i++)  // insertion sort: a handful of entries
        for (int j = i; j > 0 && steps[j - 1] > steps[j]; j--) {
            long t = steps[j];
            steps[j] = steps[j - 1];
            steps[j - 1] = t;
        }
    *steps_out = steps;
    return n;
}

int checkpoint_save(const char* run_dir, Model* m, const TrainState* st, int keep, char* err, size_t err_size) {
    char root[4096], tmp[4200], final_dir[4200], path[4400];
    snprintf(root, sizeof root, "%s/checkpoints", run_dir);
    if (make_directories(root)) {
        snprintf(err, err_size, "%s: cannot create: %s", root, strerror(errno));
        return -1;
    }
    snprintf(final_dir, sizeof final_dir, "%s/step_%08ld", root, st->step);
    snprintf(tmp, sizeof tmp, "%s/.tmp-step_%08ld-XXXXXX", root, st->step);
    if (!mkdtemp(tmp)) {
        snprintf(err, err_size, "%s: cannot create a temporary checkpoint directory: %s", root, strerror(errno));
        return -1;
    }
    size_t n = model_total_params(m);
    Backend* be = model_backend(m);
    float* host = mallocCheck(n * sizeof(float));
    float* moments = mallocCheck(2 * n * sizeof(float));
    model_get_params(m, host);
    be->download(be, moments, model_adam_m(m), n * sizeof(float));
    be->download(be, moments + n, model_adam_v(m), n * sizeof(float));
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    int rc = write_model(m, host, st->clip_model, path, err, err_size);
    snprintf(path, sizeof path, "%s/state.safetensors", tmp);
    if (rc == 0) rc = write_state(moments, moments + n, n, st, path, err, err_size);
    free(host);
    free(moments);
    if (rc == 0 && rename(tmp, final_dir) != 0) {
        snprintf(err, err_size, "%s: cannot move the new checkpoint into place: %s", final_dir, strerror(errno));
        rc = -1;
    }
    if (rc) {
        remove_tree(tmp);
        return rc;
    }
    fsync_path(root);

    long* steps;
    int count = list_checkpoints(root, &steps);
    for (int i = 0; i + keep < count; i++) {
        snprintf(path, sizeof path, "%s/step_%08ld", root, steps[i]);
        if (remove_tree(path)) LOG_WARN("could not remove the old checkpoint %s: %s", path, strerror(errno));
    }
    free(steps);
    return 0;
}

int checkpoint_latest(const char* run_dir, char* path, size_t path_size) {
    char root[4096];
    snprintf(root, sizeof root, "%s/checkpoints", run_dir);
    long* steps;
    int count = list_checkpoints(root, &steps);
    if (count > 0) snprintf(path, path_size, "%s/step_%08ld", root, steps[count - 1]);
    free(steps);
    return count > 0;
}

int checkpoint_read_model_config(const char* model_path, ModelConfig* cfg, char* clip_model, size_t clip_model_size,
                                 char* err, size_t err_size) {
    SafeTensors st;
    if (safetensors_read(model_path, &st, err, err_size)) return -1;
    const char* clip = safetensors_meta(&st, "clip_model");
    snprintf(clip_model, clip_model_size, "%s", clip ? clip : "");
    const char* json = safetensors_meta(&st, "tipcap_model_config");
    int rc = 0;
    if (!json || parse_model_config(json, cfg)) {
        snprintf(err, err_size, "%s: no tipcap_model_config in the metadata: not a tipcap checkpoint", model_path);
        rc = -1;
    }
    safetensors_free(&st);
    return rc;
}

static int load_weights_from(Model* m, const SafeTensors* st, char* err, size_t err_size) {
    size_t n = model_total_params(m);
    float* host = mallocCheck(n * sizeof(float));
    int rc = 0;
    for (int i = 0; i < model_num_params(m) && rc == 0; i++) {
        const ParamInfo* p = model_param(m, i);
        const StTensor* t = safetensors_find(st, p->name);
        if (!t) {
            snprintf(err, err_size, "%s: tensor '%s' is missing", st->path, p->name);
            rc = -1;
        } else if (t->ndim != p->ndim || t->shape[0] != p->shape[0] || (p->ndim > 1 && t->shape[1] != p->shape[1])) {
            snprintf(err, err_size, "%s: tensor '%s' has shape [%lld, %lld], the model needs [%lld, %lld]", st->path, p->name,
                     (long long)t->shape[0], (long long)(t->ndim > 1 ? t->shape[1] : 1), (long long)p->shape[0],
                     (long long)p->shape[1]);
            rc = -1;
        } else {
            safetensors_to_f32(st, t, host + p->offset);
        }
    }
    const StTensor* vocab = safetensors_find(st, "decoder.vocab");
    if (rc == 0 && (!vocab || vocab->dtype != ST_I32 || st_numel(vocab) != model_config(m)->vocab_size)) {
        snprintf(err, err_size, "%s: tensor 'decoder.vocab' (I32 [%d], the GPT-2 id of each token) is missing or wrong",
                 st->path, model_config(m)->vocab_size);
        rc = -1;
    }
    if (rc == 0) {
        model_set_params(m, host);
        model_set_vocab(m, (const int32_t*)(st->data + vocab->offset));
    }
    free(host);
    return rc;
}

static int config_matches(const Model* m, const SafeTensors* st, char* err, size_t err_size) {
    ModelConfig saved;
    const char* json = safetensors_meta(st, "tipcap_model_config");
    if (!json || parse_model_config(json, &saved)) {
        snprintf(err, err_size, "%s: no tipcap_model_config in the metadata: not a tipcap checkpoint", st->path);
        return -1;
    }
    const ModelConfig* c = model_config(m);
    // each field under the name of the config key that sets it
    const struct { const char* key; int saved, now; } fields[] = {
        {"the feature dimension D (data.features)", saved.clip_dim, c->clip_dim},
        {"model.prefix_len", saved.prefix_len, c->prefix_len},
        {"model.width", saved.width, c->width},
        {"the decoder's vocabulary size (model.vocab, data.corpus)", saved.vocab_size, c->vocab_size},
        {"model.max_len", saved.max_len, c->max_len},
        {"model.dec_layers", saved.dec_layers, c->dec_layers},
        {"model.dec_heads", saved.dec_heads, c->dec_heads},
        {"model.int_layers", saved.int_layers, c->int_layers},
        {"model.int_heads", saved.int_heads, c->int_heads},
        {"model.map_layers", saved.map_layers, c->map_layers},
        {"model.proj_hidden", saved.proj_hidden, c->proj_hidden},
        {"model.max_prompts", saved.max_prompts, c->max_prompts},
    };
    size_t len = (size_t)snprintf(err, err_size, "%s: the checkpoint was saved for another model than the config gives:",
                                  st->path);
    int n = 0;
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (fields[i].saved != fields[i].now && len < err_size)
            len += (size_t)snprintf(err + len, err_size - len, "%s %s is %d in the checkpoint, %d in the config", n++ ? ";" : "",
                                    fields[i].key, fields[i].saved, fields[i].now);
    return n ? CHECKPOINT_MISMATCH : 0;
}

int model_load_weights(Model* m, const char* model_path, char* err, size_t err_size) {
    SafeTensors st;
    if (safetensors_read(model_path, &st, err, err_size)) return -1;
    int rc = config_matches(m, &st, err, err_size);
    if (rc == 0) rc = load_weights_from(m, &st, err, err_size);
    safetensors_free(&st);
    return rc;
}

static int meta_long(const SafeTensors* st, const char* key, long long* out, char* err, size_t err_size) {
    const char* v = safetensors_meta(st, key);
    char* end;
    if (!v || !*v || (*out = strtoll(v, &end, 10), *end)) {
        snprintf(err, err_size, "%s: metadata '%s' is missing or not an integer", st->path, key);
        return -1;
    }
    return 0;
}

int checkpoint_load(const char* ckpt_dir, Model* m, TrainState* state, char* err, size_t err_size) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model.safetensors", ckpt_dir);
    int rc = model_load_weights(m, path, err, err_size);
    if (rc) return rc;
    if (!state) return 0;
    snprintf(path, sizeof path, "%s/state.safetensors", ckpt_dir);
    SafeTensors st;
    if (safetensors_read(path, &st, err, err_size)) return -1;
    size_t n = model_total_params(m);
    const StTensor* tm = safetensors_find(&st, "adam.m");
    const StTensor* tv = safetensors_find(&st, "adam.v");
    if (!tm || !tv || tm->dtype != ST_F32 || tv->dtype != ST_F32 || (size_t)st_numel(tm) != n || (size_t)st_numel(tv) != n) {
        snprintf(err, err_size, "%s: adam.m and adam.v must be fp32 tensors of %zu elements", path, n);
        rc = -1;
    }
    long long step = 0, epoch = 0, cursor = 0, seed = 0;
    if (!rc) rc = meta_long(&st, "step", &step, err, err_size);
    if (!rc) rc = meta_long(&st, "data_epoch", &epoch, err, err_size);
    if (!rc) rc = meta_long(&st, "data_cursor", &cursor, err, err_size);
    if (!rc) {
        const char* s = safetensors_meta(&st, "seed");
        if (!s) {
            snprintf(err, err_size, "%s: metadata 'seed' is missing", path);
            rc = -1;
        } else {
            seed = (long long)strtoull(s, NULL, 10);
        }
    }
    if (!rc) {
        Backend* be = model_backend(m);
        be->upload(be, model_adam_m(m), st.data + tm->offset, n * sizeof(float));
        be->upload(be, model_adam_v(m), st.data + tv->offset, n * sizeof(float));
        state->step = (long)step;
        state->data.epoch = epoch;
        state->data.cursor = cursor;
        state->seed = (uint64_t)seed;
        const char* elapsed = safetensors_meta(&st, "elapsed_s");  // absent in older checkpoints
        state->elapsed_s = elapsed ? atof(elapsed) : 0;
        const char* cfg = safetensors_meta(&st, "config");
        state->config_json = strdupCheck(cfg ? cfg : "{}");
    }
    safetensors_free(&st);
    return rc;
}
