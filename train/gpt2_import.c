#include "train/gpt2_import.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "train/safetensors.h"

static const StTensor* find(const SafeTensors* st, const char* name) {
    const StTensor* t = safetensors_find(st, name);
    if (t) return t;
    char prefixed[160];
    snprintf(prefixed, sizeof prefixed, "transformer.%s", name);
    return safetensors_find(st, prefixed);
}

// Copies HF tensor `hf` into our tensor `ours`. transpose: HF [in, out] (Conv1D) -> ours [out, in].
// Untransposed 2-D tensors may differ in rows: wte has padded vocabulary rows in tipcap (left
// zero), wpe has more positions in GPT-2 than tipcap uses (the first ones are taken).
static int copy_tensor(const SafeTensors* st, const char* hf, const Model* m, const char* ours, int transpose,
                       float* host, char* err, size_t err_size) {
    const StTensor* t = find(st, hf);
    const ParamInfo* p = model_find_param(m, ours);
    if (!p) FATAL("gpt2 import: the model has no tensor '%s'", ours);
    if (!t) {
        snprintf(err, err_size, "%s: tensor '%s' is missing: not a GPT-2 checkpoint?", st->path, hf);
        return -1;
    }
    int64_t rows = t->shape[0], cols = t->ndim > 1 ? t->shape[1] : 1;
    int64_t our_rows = transpose ? p->shape[1] : p->shape[0];
    int64_t our_cols = transpose ? p->shape[0] : (p->ndim > 1 ? p->shape[1] : 1);
    int rows_may_differ = !transpose && p->ndim == 2;
    if (t->ndim != p->ndim || cols != our_cols || (rows != our_rows && !rows_may_differ)) {
        snprintf(err, err_size, "%s: tensor '%s' has shape [%lld, %lld]; the configured model needs [%lld, %lld] (%s)",
                 st->path, hf, (long long)rows, (long long)cols, (long long)our_rows, (long long)our_cols, ours);
        return -1;
    }
    float* tmp = mallocCheck(sizeof(float) * (size_t)(rows * cols));
    safetensors_to_f32(st, t, tmp);
    float* dst = host + p->offset;
    if (transpose) {
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) dst[c * rows + r] = tmp[r * cols + c];
    } else {
        memcpy(dst, tmp, sizeof(float) * (size_t)((rows < our_rows ? rows : our_rows) * cols));
    }
    free(tmp);
    return 0;
}

int model_load_gpt2(Model* m, const char* path, char* err, size_t err_size) {
    SafeTensors st;
    if (safetensors_read(path, &st, err, err_size)) return -1;
    const ModelConfig* c = model_config(m);
    int rc = 0;
    const StTensor* wte = find(&st, "wte.weight");
    if (!wte || wte->ndim != 2) {
        snprintf(err, err_size, "%s: no wte.weight: not a GPT-2 checkpoint", path);
        rc = -1;
    } else if (wte->shape[0] != c->vocab_size || wte->shape[1] != c->width) {
        snprintf(err, err_size, "%s: the vocabulary/width %lld x %lld does not match the model's %d x %d", path,
                 (long long)wte->shape[0], (long long)wte->shape[1], c->vocab_size, c->width);
        rc = -1;
    }
    char name[96];
    snprintf(name, sizeof name, "h.%d.ln_1.weight", c->dec_layers);
    const StTensor* wpe = find(&st, "wpe.weight");
    if (!rc && (!wpe || wpe->shape[0] < c->max_len)) {
        snprintf(err, err_size, "%s: wpe.weight has fewer than model.max_len = %d positions", path, c->max_len);
        rc = -1;
    }
    if (!rc && find(&st, name)) {
        snprintf(err, err_size, "%s: the checkpoint has more than the configured %d decoder layers (model.dec_layers)", path,
                 c->dec_layers);
        rc = -1;
    }
    size_t total = model_total_params(m);
    float* host = mallocCheck(sizeof(float) * total);
    model_get_params(m, host);
    if (!rc) {
        const ParamInfo* p = model_find_param(m, "decoder.wte");
        memset(host + p->offset, 0, sizeof(float) * p->numel);  // padded vocabulary rows stay zero
    }
    static const struct { const char* hf; const char* ours; int transpose; } block[] = {
        {"ln_1.weight", "ln_1.weight", 0},          {"ln_1.bias", "ln_1.bias", 0},
        {"attn.c_attn.weight", "attn.qkv.weight", 1}, {"attn.c_attn.bias", "attn.qkv.bias", 0},
        {"attn.c_proj.weight", "attn.proj.weight", 1}, {"attn.c_proj.bias", "attn.proj.bias", 0},
        {"ln_2.weight", "ln_2.weight", 0},          {"ln_2.bias", "ln_2.bias", 0},
        {"mlp.c_fc.weight", "mlp.fc.weight", 1},    {"mlp.c_fc.bias", "mlp.fc.bias", 0},
        {"mlp.c_proj.weight", "mlp.proj.weight", 1}, {"mlp.c_proj.bias", "mlp.proj.bias", 0},
    };
    if (!rc) rc = copy_tensor(&st, "wte.weight", m, "decoder.wte", 0, host, err, err_size);
    if (!rc) rc = copy_tensor(&st, "wpe.weight", m, "decoder.wpe", 0, host, err, err_size);
    for (int l = 0; l < c->dec_layers && !rc; l++)
        for (size_t i = 0; i < sizeof block / sizeof *block && !rc; i++) {
            char hf[96], ours[96];
            snprintf(hf, sizeof hf, "h.%d.%s", l, block[i].hf);
            snprintf(ours, sizeof ours, "decoder.h.%d.%s", l, block[i].ours);
            rc = copy_tensor(&st, hf, m, ours, block[i].transpose, host, err, err_size);
        }
    if (!rc) rc = copy_tensor(&st, "ln_f.weight", m, "decoder.ln_f.weight", 0, host, err, err_size);
    if (!rc) rc = copy_tensor(&st, "ln_f.bias", m, "decoder.ln_f.bias", 0, host, err, err_size);
    if (!rc) model_set_params(m, host);
    free(host);
    safetensors_free(&st);
    return rc;
}
