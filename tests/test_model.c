// The whole model on the backends: the gradient of a training step against finite differences,
// the CPU backend against the CUDA backend (emulated in `make test`, real in `make test-gpu`),
// cached decoding against full recomputation, and beam search against brute-force enumeration.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "common/check.h"
#include "infer/decode.h"
#include "kernels/philox.h"
#include "tests/harness.h"
#include "train/gpt2_import.h"
#include "train/model.h"

#define EOT 10  // the tiny models' vocabulary is 0..10

static ModelConfig tiny_config(int map_layers) {
    ModelConfig c = {.clip_dim = 6, .prefix_len = 2, .width = 8, .vocab_size = EOT + 1, .max_len = 9,
                     .dec_layers = 2, .dec_heads = 2, .int_layers = 1, .int_heads = 2, .map_layers = map_layers,
                     .proj_hidden = 10, .max_prompts = 2};
    return c;
}

// A batch of 3 rows with 4 caption slots and prompts (row 0: two words, row 1: none, row 2: one).
typedef struct {
    float emb[3 * 6];
    int tokens[3 * 4];
    int targets[3 * 6];
    int prompts[3 * 2];
    int bag_offsets[4];
    int bag_ids[5];
    ModelBatch mb;
} TinyBatch;

static void tiny_batch(TinyBatch* t, uint64_t seed, int gap_noise) {
    for (int i = 0; i < 18; i++) t->emb[i] = philox_normal(seed, 1, (uint64_t)i) * 0.5f;
    int lengths[3] = {4, 2, 3};
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < 4; i++)
            t->tokens[b * 4 + i] = i < lengths[b] ? (int)(philox_uniform(seed, 2, (uint64_t)(b * 4 + i)) * EOT) : -1;
        for (int p = 0; p < 6; p++) t->targets[b * 6 + p] = -1;
        for (int i = 0; i < lengths[b]; i++) t->targets[b * 6 + 1 + i] = t->tokens[b * 4 + i];
        if (lengths[b] < 4) t->targets[b * 6 + 1 + lengths[b]] = EOT;
    }
    int prompts[6] = {0, 1, -1, -1, 2, -1};
    int offsets[4] = {0, 2, 3, 5};
    int ids[5] = {3, 7, 5, 1, 1};
    memcpy(t->prompts, prompts, sizeof prompts);
    memcpy(t->bag_offsets, offsets, sizeof offsets);
    memcpy(t->bag_ids, ids, sizeof ids);
    t->mb = (ModelBatch){.B = 3, .L = 4, .emb = t->emb, .tokens = t->tokens, .targets = t->targets, .M = 2,
                         .prompts = t->prompts, .n_bags = 3, .bag_offsets = t->bag_offsets, .bag_ids = t->bag_ids,
                         .gap_noise = gap_noise, .noise_seed = seed, .noise_stream = 7, .row0 = 11};
}

// A random model with a full lower-triangular L (positive diagonal) and non-trivial gains:
// weights N(0, 0.02) as initialised plus N(0, spread) so that gradients come in all sizes.
static Model* tiny_model_spread(Backend* be, int map_layers, uint64_t seed, float spread) {
    ModelConfig c = tiny_config(map_layers);
    Model* m = model_create(be, &c, 3 * 121, 6);
    model_init_random(m, seed);
    size_t n = model_total_params(m);
    float* p = mallocCheck(n * sizeof(float));
    model_get_params(m, p);
    for (int i = 0; i < model_num_params(m); i++) {  // larger weights than GPT-2's 0.02: gradients of all sizes
        const ParamInfo* t = model_param(m, i);
        for (size_t j = 0; j < t->numel; j++)
            p[t->offset + j] += spread * philox_normal(seed + 1, (uint64_t)i, j);
    }
    const ParamInfo* mu = model_find_param(m, "gap.mu");
    const ParamInfo* L = model_find_param(m, "gap.chol");
    int D = c.clip_dim;
    for (int i = 0; i < D; i++) {
        p[mu->offset + i] = 0.1f * philox_normal(seed + 2, 0, (uint64_t)i);
        for (int j = 0; j < D; j++)
            p[L->offset + (size_t)i * D + j] = j > i ? 0.0f : j == i ? 0.4f : 0.1f * philox_normal(seed + 2, 1, (uint64_t)(i * D + j));
    }
    model_set_params(m, p);
    free(p);
    return m;
}

static Model* tiny_model(Backend* be, int map_layers, uint64_t seed) { return tiny_model_spread(be, map_layers, seed, 0.3f); }

static double mean_loss(Model* m, const ModelBatch* b) {
    long n;
    double sum = model_forward_loss(m, b, &n);
    return sum / (double)n;
}

static void check_step_gradient(int map_layers) {
    uint64_t seed = test_seed() + (uint64_t)map_layers;
    Backend* be = backend_cpu_create();
    Model* m = tiny_model(be, map_layers, seed);
    model_set_trainable(m, 1, 1);
    TinyBatch tb;
    tiny_batch(&tb, seed, 1);
    long count;
    model_forward_loss(m, &tb.mb, &count);
    model_zero_grad(m);
    model_forward_backward(m, &tb.mb, 1.0f / (float)count, &count);
    size_t n = model_total_params(m);
    float* grad = mallocCheck(n * sizeof(float));
    float* p = mallocCheck(n * sizeof(float));
    be->download(be, grad, model_grads(m), n * sizeof(float));
    model_get_params(m, p);
    // every tensor at a few positions, the gap's lower triangle included
    int checked = 0, bad = 0;
    double worst = 0;
    for (int i = 0; i < model_num_params(m); i++) {
        const ParamInfo* t = model_param(m, i);
        for (int s = 0; s < 3; s++) {
            size_t j = (size_t)(philox_uniform(seed, 100 + (uint64_t)i, (uint64_t)s) * (double)t->numel);
            if (!strcmp(t->name, "gap.chol") && (j % 6) > (j / 6)) j = (j / 6) * 6 + (j / 6);  // upper -> diagonal
            if (!strcmp(t->name, "decoder.wte") && j >= (size_t)(EOT + 1) * 8) j %= (size_t)(EOT + 1) * 8;
            size_t at = t->offset + j;
            // central differences at h and h/2, combined (Richardson) to cancel the h^2 term
            float orig = p[at];
            double d[2];
            for (int r = 0; r < 2; r++) {
                float h = r == 0 ? 2e-2f : 1e-2f;
                p[at] = orig + h;
                model_set_params(m, p);
                double up = mean_loss(m, &tb.mb);
                p[at] = orig - h;
                model_set_params(m, p);
                double down = mean_loss(m, &tb.mb);
                d[r] = (up - down) / (double)((orig + h) - (orig - h));
            }
            p[at] = orig;
            double fd = (4.0 * d[1] - d[0]) / 3.0;
            // 1% of the gradient, over a floor of fp32 rounding in the loss (~1e-7 / h)
            double err = fabs(fd - grad[at]) / (5e-5 + 1e-2 * fmax(fabs(fd), fabs(grad[at])));
            if (err > worst) worst = err;
            if (err > 1) {
                bad++;
                CHECK(0, "%s[%zu]: backward %.6g, finite difference %.6g", t->name, j, grad[at], fd);
            }
            checked++;
        }
    }
    model_set_params(m, p);
    printf("  map_layers=%d: %d gradients checked, worst error %.2f of the bound\n", map_layers, checked, worst);
    CHECK(bad == 0, "%d of %d gradients differ", bad, checked);
    free(grad);
    free(p);
    model_free(m);
    be->destroy(be);
}

static void test_step_gradient_mlp(void) { check_step_gradient(0); }
static void test_step_gradient_mapper(void) { check_step_gradient(1); }

// Frozen groups get no gradient; the gradient of the rest is unchanged by freezing.
static void test_frozen_decoder(void) {
    uint64_t seed = test_seed() + 5;
    Backend* be = backend_cpu_create();
    Model* m = tiny_model(be, 0, seed);
    TinyBatch tb;
    tiny_batch(&tb, seed, 1);
    size_t n = model_total_params(m);
    float* all = mallocCheck(n * sizeof(float));
    float* frozen = mallocCheck(n * sizeof(float));
    long count;
    model_set_trainable(m, 0, 1);
    model_zero_grad(m);
    model_forward_backward(m, &tb.mb, 0.1f, &count);
    be->download(be, all, model_grads(m), n * sizeof(float));
    model_set_trainable(m, 0, 0);
    model_zero_grad(m);
    model_forward_backward(m, &tb.mb, 0.1f, &count);
    be->download(be, frozen, model_grads(m), n * sizeof(float));
    for (int i = 0; i < model_num_params(m); i++) {
        const ParamInfo* t = model_param(m, i);
        int zero = 1, same = 1;
        for (size_t j = 0; j < t->numel; j++) {
            zero &= frozen[t->offset + j] == 0.0f;
            same &= frozen[t->offset + j] == all[t->offset + j];
        }
        if (t->group == GROUP_DECODER || t->group == GROUP_GAP) CHECK(zero, "%s has a gradient while frozen", t->name);
        else CHECK(same, "%s: gradient changed by freezing the decoder", t->name);
    }
    free(all);
    free(frozen);
    model_free(m);
    be->destroy(be);
}

// The CUDA backend (emulated, or the GPU in make test-gpu) against the CPU on the same model and batch.
static void compare_backends(DType act) {
    Backend* gpu = backend_cuda_create(act);
    NEED_GPU(gpu);
    uint64_t seed = test_seed() + 9;
    Backend* cpu = backend_cpu_create();
    // bf16 keeps 8 bits of mantissa per activation: moderate weights keep the tiny model (C = 8)
    // well conditioned, so that rounding stays at the percent level while a wrong kernel is off by O(1)
    float spread = act == DTYPE_F32 ? 0.3f : 0.1f;
    Model* mc = tiny_model_spread(cpu, 1, seed, spread);
    Model* mg = tiny_model_spread(gpu, 1, seed, spread);
    model_set_trainable(mc, 1, 1);
    model_set_trainable(mg, 1, 1);
    TinyBatch tb;
    tiny_batch(&tb, seed, 1);
    long nc, ng;
    model_zero_grad(mc);
    model_zero_grad(mg);
    double lc = model_forward_backward(mc, &tb.mb, 0.05f, &nc);
    double lg = model_forward_backward(mg, &tb.mb, 0.05f, &ng);
    double tol = act == DTYPE_F32 ? 1e-5 : 2e-2;
    CHECK(nc == ng && fabs(lc - lg) <= tol * fabs(lc), "loss: cpu %.8g, %s %.8g", lc, gpu->name, lg);
    size_t n = model_total_params(mc);
    float* gc = mallocCheck(n * sizeof(float));
    float* gg = mallocCheck(n * sizeof(float));
    cpu->download(cpu, gc, model_grads(mc), n * sizeof(float));
    gpu->download(gpu, gg, model_grads(mg), n * sizeof(float));
    double gtol = act == DTYPE_F32 ? 1e-4 : 0.1, worst = 0;
    for (int i = 0; i < model_num_params(mc); i++) {
        const ParamInfo* t = model_param(mc, i);
        double e = rel_err(gg + t->offset, gc + t->offset, t->numel);
        worst = fmax(worst, e);
        CHECK(e <= gtol, "%s: gradient relative error %.3g (bound %.0e)", t->name, e, gtol);
    }
    // one AdamW step: the same master weights
    double norm_c = model_adamw_step(mc, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, 1);
    double norm_g = model_adamw_step(mg, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.01f, 1.0f, 1);
    CHECK(fabs(norm_c - norm_g) <= gtol * norm_c, "grad norm cpu %.6g %s %.6g", norm_c, gpu->name, norm_g);
    float* pc = mallocCheck(n * sizeof(float));
    float* pg = mallocCheck(n * sizeof(float));
    model_get_params(mc, pc);
    model_get_params(mg, pg);
    // Adam's first step moves each weight by about lr * sign(g): where g is near zero the two backends'
    // rounding can flip the sign, so the bound is looser than for the gradients
    double ptol = act == DTYPE_F32 ? 2e-3 : 5e-2;
    CHECK(rel_err(pg, pc, n) <= ptol, "parameters after AdamW differ: %.3g", rel_err(pg, pc, n));
    printf("  %s %s: loss %.3g apart, worst gradient %.3g apart\n", gpu->name, act == DTYPE_F32 ? "fp32" : "bf16",
           fabs(lc - lg) / fabs(lc), worst);
    free(gc); free(gg); free(pc); free(pg);
    model_free(mc);
    model_free(mg);
    cpu->destroy(cpu);
    gpu->destroy(gpu);
}

static void test_cuda_backend_fp32(void) { compare_backends(DTYPE_F32); }
static void test_cuda_backend_bf16(void) { compare_backends(DTYPE_BF16); }

// Decoding one token at a time with the cache gives the full forward's log-probabilities.
static void check_cached_decoding(Backend* be) {
    uint64_t seed = test_seed() + 13;
    Model* m = tiny_model(be, 0, seed);
    TinyBatch tb;
    tiny_batch(&tb, seed, 0);
    for (int i = 0; i < 3 * 4; i++) tb.tokens[i] = (int)(philox_uniform(seed, 3, (uint64_t)i) * EOT);  // no padding
    int B = 3, K = 2, L = 4, Vp = model_padded_vocab(m), V = EOT + 1;
    float* logits = mallocCheck(sizeof(float) * (size_t)B * (K + L) * Vp);
    model_logits_rows(m, &tb.mb, logits);
    ModelDecoder* d = model_decoder_create(m, B, V);
    float values[3 * 11];
    int ids[3 * 11];
    ModelBatch prefix = tb.mb;
    prefix.L = 0;
    prefix.tokens = NULL;
    prefix.targets = NULL;
    model_decode_prefix(m, d, &prefix, V, values, ids);
    double worst = 0;
    for (int pos = K - 1; pos < K + L - 1; pos++) {
        for (int b = 0; b < B; b++) {
            const float* row = logits + ((size_t)b * (K + L) + pos) * Vp;
            double mx = -INFINITY, z = 0;
            for (int v = 0; v < V; v++) mx = fmax(mx, row[v]);
            for (int v = 0; v < V; v++) z += exp(row[v] - mx);
            for (int c = 0; c < V; c++) {
                double want = row[ids[b * V + c]] - mx - log(z);
                worst = fmax(worst, fabs(want - values[b * V + c]));
            }
        }
        int feed[3];
        for (int b = 0; b < B; b++) feed[b] = tb.tokens[b * L + (pos - K + 1)];
        if (pos + 1 < K + L - 1) model_decode_step(m, d, feed, V, values, ids);
    }
    printf("  %s: cached vs full log-probabilities, max difference %.2e\n", be->name, worst);
    CHECK(worst < 1e-4, "%s: cached decoding differs from the full forward by %.3g", be->name, worst);
    model_decoder_free(m, d);
    free(logits);
    model_free(m);
}

static void test_cached_decoding_cpu(void) {
    Backend* be = backend_cpu_create();
    check_cached_decoding(be);
    be->destroy(be);
}

static void test_cached_decoding_cuda(void) {
    Backend* be = backend_cuda_create(DTYPE_F32);
    NEED_GPU(be);
    check_cached_decoding(be);
    be->destroy(be);
}

static DecodeOptions tiny_decode(int beam, int max_len, double alpha) {
    return (DecodeOptions){.beam = beam, .max_len = max_len, .length_penalty = alpha, .stop_at_period = 0,
                           .no_repeat_ngram = 0, .eot = EOT, .period = -1};
}

static void decode_all(Model* m, const TinyBatch* tb, const DecodeOptions* o, Caption* out) {
    ModelBatch prefix = tb->mb;
    prefix.L = 0;
    prefix.tokens = NULL;
    prefix.targets = NULL;
    ModelDecoder* d = model_decoder_create(m, prefix.B * o->beam, decode_topk_needed(o) > EOT + 1 ? EOT + 1 : decode_topk_needed(o));
    decode_batch(m, d, &prefix, o, out);
    model_decoder_free(m, d);
}

static void test_greedy_is_beam_one(void) {
    uint64_t seed = test_seed() + 17;
    Backend* be = backend_cpu_create();
    Model* m = tiny_model(be, 0, seed);
    TinyBatch tb;
    tiny_batch(&tb, seed, 0);
    // greedy by hand: the argmax of the full forward at each step
    DecodeOptions o = tiny_decode(1, 6, 0.0);
    Caption out[3];
    decode_all(m, &tb, &o, out);
    for (int b = 0; b < 3; b++) {
        int seq[8], len = 0;
        for (; len < 6; len++) {
            TinyBatch q = tb;
            int L = len > 0 ? len : 1;
            int tokens[8];
            for (int i = 0; i < L; i++) tokens[i] = i < len ? seq[i] : -1;
            q.mb.B = 1;
            q.mb.L = L;
            q.mb.emb = tb.emb + b * 6;
            q.mb.tokens = tokens;
            q.mb.prompts = tb.prompts + b * 2;
            q.mb.targets = NULL;
            int Vp = model_padded_vocab(m);
            float* logits = mallocCheck(sizeof(float) * (size_t)(2 + L) * Vp);
            model_logits_rows(m, &q.mb, logits);
            const float* row = logits + (size_t)(2 + len - 1) * Vp;
            int best = 0;
            for (int v = 1; v <= EOT; v++) if (row[v] > row[best]) best = v;
            free(logits);
            seq[len] = best;
            if (best == EOT) break;
        }
        int n = len < 6 && seq[len] == EOT ? len : len;
        CHECK(out[b].len == n && !memcmp(out[b].tokens, seq, sizeof(int) * (size_t)n), "row %d: beam 1 != greedy argmax", b);
        caption_free(&out[b]);
    }
    model_free(m);
    be->destroy(be);
}

// log p of a whole sequence (tokens then EOT if terminated) by full forwards
static double sequence_logprob(Model* m, const TinyBatch* tb, int row, const int* seq, int len) {
    int Vp = model_padded_vocab(m);
    TinyBatch q = *tb;
    int L = len > 0 ? len : 1, tokens[8];
    for (int i = 0; i < L; i++) tokens[i] = i < len ? seq[i] : -1;
    q.mb.B = 1; q.mb.L = L; q.mb.emb = tb->emb + row * 6; q.mb.tokens = tokens; q.mb.prompts = tb->prompts + row * 2;
    q.mb.targets = NULL;
    float* logits = mallocCheck(sizeof(float) * (size_t)(2 + L) * Vp);
    model_logits_rows(m, &q.mb, logits);
    double lp = 0;
    for (int i = 0; i < len; i++) {
        const float* r = logits + (size_t)(2 + i - 1) * Vp;
        double mx = -INFINITY, z = 0;
        for (int v = 0; v <= EOT; v++) mx = fmax(mx, r[v]);
        for (int v = 0; v <= EOT; v++) z += exp(r[v] - mx);
        lp += r[seq[i]] - mx - log(z);
    }
    free(logits);
    return lp;
}

// Beam search as wide as the search space finds the best sequence of all (max_len 3, 11 tokens).
static void test_beam_matches_brute_force(void) {
    uint64_t seed = test_seed() + 19;
    Backend* be = backend_cpu_create();
    Model* m = tiny_model(be, 0, seed);
    TinyBatch tb;
    tiny_batch(&tb, seed, 0);
    double alphas[2] = {0.0, 0.8};
    for (int a = 0; a < 2; a++) {
        DecodeOptions o = tiny_decode(121, 3, alphas[a]);  // 121 = 11^2 live sequences at most
        Caption out[3];
        decode_all(m, &tb, &o, out);
        for (int b = 0; b < 3; b++) {
            double best = -INFINITY;
            int best_seq[3] = {0}, best_len = 0;
            // every sequence: t1 [t2 [t3]] where only the last may be EOT; length 3 closes at max_len
            for (int l = 1; l <= 3; l++) {
                int count = 1;
                for (int i = 0; i < l; i++) count *= EOT + 1;
                for (int c = 0; c < count; c++) {
                    int seq[3], x = c, ok = 1;
                    for (int i = 0; i < l; i++) { seq[i] = x % (EOT + 1); x /= EOT + 1; }
                    for (int i = 0; i < l - 1; i++) ok &= seq[i] != EOT;
                    if (!ok || (l < 3 && seq[l - 1] != EOT)) continue;
                    double s = sequence_logprob(m, &tb, b, seq, l) / pow((double)l, alphas[a]);
                    if (s > best + 1e-9) { best = s; memcpy(best_seq, seq, sizeof seq); best_len = l; }
                }
            }
            int want_len = best_len > 0 && best_seq[best_len - 1] == EOT ? best_len - 1 : best_len;
            CHECK(fabs(out[b].score - best) < 1e-4, "alpha %.1f row %d: beam score %.6f, best %.6f", alphas[a], b,
                  out[b].score, best);
            CHECK(out[b].len == want_len && !memcmp(out[b].tokens, best_seq, sizeof(int) * (size_t)want_len),
                  "alpha %.1f row %d: beam found another sequence", alphas[a], b);
            caption_free(&out[b]);
        }
    }
    model_free(m);
    be->destroy(be);
}

// Greedy captions on the CUDA backend equal the CPU's in fp32.
static void test_cuda_greedy_matches_cpu(void) {
    Backend* gpu = backend_cuda_create(DTYPE_F32);
    NEED_GPU(gpu);
    uint64_t seed = test_seed() + 23;
    Backend* cpu = backend_cpu_create();
    Model* mc = tiny_model(cpu, 0, seed);
    Model* mg = tiny_model(gpu, 0, seed);
    TinyBatch tb;
    tiny_batch(&tb, seed, 0);
    DecodeOptions o = tiny_decode(3, 6, 0.0);
    Caption oc[3], og[3];
    decode_all(mc, &tb, &o, oc);
    decode_all(mg, &tb, &o, og);
    for (int b = 0; b < 3; b++) {
        CHECK(oc[b].len == og[b].len && !memcmp(oc[b].tokens, og[b].tokens, sizeof(int) * (size_t)oc[b].len),
              "row %d: the CUDA backend decodes another caption", b);
        caption_free(&oc[b]);
        caption_free(&og[b]);
    }
    model_free(mc);
    model_free(mg);
    cpu->destroy(cpu);
    gpu->destroy(gpu);
}

// A minimal .npy writer (float32 '<f4' or int32 '<i4', C order) for the Python oracle.
static void write_npy(const char* path, const char* descr, const void* data, size_t elem, const int* shape, int ndim) {
    char header[256], dims[128] = "";
    size_t n = 1, len = 0;
    for (int i = 0; i < ndim; i++) {
        len += (size_t)snprintf(dims + len, sizeof dims - len, "%d, ", shape[i]);
        n *= (size_t)shape[i];
    }
    int h = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, dims);
    int total = (10 + h + 1 + 63) / 64 * 64;  // magic, version, length, header, newline: 64-byte aligned
    while (10 + h + 1 < total) header[h++] = ' ';
    header[h++] = '\n';
    FILE* f = fopenCheck(path, "wb");
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(h & 0xff), (unsigned char)(h >> 8)};
    fwriteCheck(pre, 1, 10, f, path);
    fwriteCheck(header, 1, (size_t)h, f, path);
    fwriteCheck(data, elem, n, f, path);
    fclose(f);
}

// A GPT-2 checkpoint in Hugging Face's layout (written by transformers when installed, else by the
// oracle's numpy code) gives the same logits in tipcap's decoder as in GPT-2 itself, for the same
// input embeddings [prefix; tokens].
static void test_gpt2_import(void) {
    char dir[] = "/tmp/tipcap_gpt2_XXXXXX", cmd[512], path[256], err[512];
    REQUIRE(mkdtemp(dir), "mkdtemp");
    snprintf(cmd, sizeof cmd, "python3 tests/gpt2_oracle.py make %s", dir);
    int rc = system(cmd);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) == 3) SKIP("numpy and safetensors (pip) are not installed");
    REQUIRE(WEXITSTATUS(rc) == 0, "the oracle could not write a checkpoint");
    ModelConfig c = {.clip_dim = 6, .prefix_len = 2, .width = 16, .vocab_size = 50257, .max_len = 32, .dec_layers = 2,
                     .dec_heads = 2, .int_layers = 1, .int_heads = 2, .map_layers = 0, .proj_hidden = 10,
                     .max_prompts = 2};
    Backend* be = backend_cpu_create();
    Model* m = model_create(be, &c, 2, 5);
    uint64_t seed = test_seed() + 29;
    model_init_random(m, seed);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    REQUIRE(model_load_gpt2(m, path, err, sizeof err) == 0, "%s", err);
    int B = 2, K = 2, L = 5, C = 16, V = 50257, Vp = model_padded_vocab(m);
    float emb[2 * 6];
    int tokens[2 * 5];
    for (int i = 0; i < 12; i++) emb[i] = philox_normal(seed, 1, (uint64_t)i);
    for (int i = 0; i < 10; i++) tokens[i] = (int)(philox_uniform(seed, 2, (uint64_t)i) * (V - 1));
    ModelBatch b = {.B = B, .L = L, .emb = emb, .tokens = tokens, .M = 0, .gap_noise = 0};
    float* prefix = mallocCheck(sizeof(float) * (size_t)B * K * C);
    float* logits = mallocCheck(sizeof(float) * (size_t)B * (K + L) * Vp);
    float* ours = mallocCheck(sizeof(float) * (size_t)B * (K + L) * V);
    model_prefix(m, &b, prefix);
    model_logits_rows(m, &b, logits);
    for (int r = 0; r < B * (K + L); r++) memcpy(ours + (size_t)r * V, logits + (size_t)r * Vp, sizeof(float) * (size_t)V);
    int sp[3] = {B, K, C}, st[2] = {B, L}, so[3] = {B, K + L, V};
    snprintf(path, sizeof path, "%s/prefix.npy", dir);
    write_npy(path, "<f4", prefix, sizeof(float), sp, 3);
    snprintf(path, sizeof path, "%s/tokens.npy", dir);
    write_npy(path, "<i4", tokens, sizeof(int), st, 2);
    snprintf(path, sizeof path, "%s/ours.npy", dir);
    write_npy(path, "<f4", ours, sizeof(float), so, 3);
    snprintf(cmd, sizeof cmd, "python3 tests/gpt2_oracle.py check %s", dir);
    fflush(stdout);
    rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 0, "tipcap's GPT-2 decoder differs from GPT-2 (see above)");
    free(prefix);
    free(logits);
    free(ours);
    model_free(m);
    be->destroy(be);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("  could not remove %s\n", dir);
}

int main(void) {
    RUN(test_step_gradient_mlp);
    RUN(test_step_gradient_mapper);
    RUN(test_frozen_decoder);
    RUN(test_cuda_backend_fp32);
    RUN(test_cuda_backend_bf16);
    RUN(test_cached_decoding_cpu);
    RUN(test_cached_decoding_cuda);
    RUN(test_greedy_is_beam_one);
    RUN(test_beam_matches_brute_force);
    RUN(test_cuda_greedy_matches_cpu);
    RUN(test_gpt2_import);
    return test_summary();
}
