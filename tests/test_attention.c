// Attention (kernels/attention.*): the CPU reference against a naive softmax(QK^T)V and against
// finite differences in double precision; the CUDA kernels (under the CPU emulation of CUDA in
// `make test`, on the GPU in `make test-gpu`) against the CPU reference in fp32 and bf16; on a
// GPU, cuDNN's fused attention (the optional path) too.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "kernels/attention.h"
#include "kernels/backend.h"
#include "tests/harness.h"
#ifndef TIPCAP_TEST_GPU
#include "tests/emu_test_kernels.h"  // etk_set_device: the emulation's device profiles
#endif

// ------------------------------------------------------------------ inputs

static uint64_t rng_state;
static uint64_t rng_next(void) {  // splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_uniform(float lo, float hi) { return lo + (hi - lo) * (float)((rng_next() >> 40) * 0x1.0p-24); }
static int rng_int(int lo, int hi) { return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1)); }

// Key padding modes: all keys valid (key_len NULL), random lengths in [1, T], or random with
// batch row 0 fully masked (key_len 0).
enum { PAD_NONE, PAD_RANDOM, PAD_WITH_EMPTY };

typedef struct {
    int B, T, C, H, causal, pad;
} Shape;

static size_t qkv_size(const Shape* s) { return (size_t)s->B * s->T * 3 * s->C; }
static size_t out_size(const Shape* s) { return (size_t)s->B * s->T * s->C; }
static size_t lse_size(const Shape* s) { return (size_t)s->B * s->H * s->T; }

// Random key lengths for `s` in kl[B]; returns kl, or NULL for PAD_NONE.
static int* make_key_len(int* kl, const Shape* s) {
    if (s->pad == PAD_NONE) return NULL;
    for (int b = 0; b < s->B; b++) kl[b] = rng_int(1, s->T);
    if (s->pad == PAD_WITH_EMPTY) kl[0] = 0;
    return kl;
}

static void fill_uniform(float* x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(lo, hi);
}

static float* alloc_nan(size_t n) {
    float* x = (float*)mallocCheck(n * sizeof(float));
    memset(x, 0xff, n * sizeof(float));  // NaN: an output the code under test fails to write stays NaN
    return x;
}

static void describe(char* buf, size_t cap, const Shape* s, const char* what) {
    snprintf(buf, cap, "%s B=%d T=%d C=%d H=%d (hs %d) %s pad=%d", what, s->B, s->T, s->C, s->H, s->C / s->H,
             s->causal ? "causal" : "bidirectional", s->pad);
}

// Max over rows of |a - b| for log-sum-exps, -inf only where both are -inf; infinite otherwise.
static double lse_err(const float* a, const float* b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (isinf(a[i]) && isinf(b[i]) && a[i] < 0 && b[i] < 0) continue;
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]));
    }
    return worst;
}

// ------------------------------------------------------------------ naive reference

// out = softmax(mask(QK^T / sqrt(hs))) V per head in double, from the full score matrix.
static void naive_attention(double* out, double* lse, const float* qkv, const int* key_len, const Shape* s) {
    const int B = s->B, T = s->T, C = s->C, H = s->H, hs = C / H;
    double* scores = (double*)mallocCheck((size_t)T * T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    double dot = 0;
                    for (int d = 0; d < hs; d++)
                        dot += (double)qkv[((size_t)b * T + i) * 3 * C + h * hs + d] *
                               (double)qkv[((size_t)b * T + j) * 3 * C + C + h * hs + d];
                    const int masked = (key_len && j >= key_len[b]) || (s->causal && j > i);
                    scores[(size_t)i * T + j] = masked ? -INFINITY : dot / sqrt((double)hs);
                }
            for (int i = 0; i < T; i++) {
                double* row = scores + (size_t)i * T;
                double max = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) max = fmax(max, row[j]);
                for (int j = 0; j < T; j++) sum += max == -INFINITY ? 0 : exp(row[j] - max);
                lse[((size_t)b * H + h) * T + i] = sum > 0 ? max + log(sum) : -INFINITY;
                for (int d = 0; d < hs; d++) {
                    double acc = 0;
                    for (int j = 0; j < T; j++)
                        if (sum > 0)
                            acc += exp(row[j] - max) / sum * (double)qkv[((size_t)b * T + j) * 3 * C + 2 * C + h * hs + d];
                    out[((size_t)b * T + i) * C + h * hs + d] = acc;
                }
            }
        }
    free(scores);
}

static void test_cpu_matches_naive(void) {
    const Shape shapes[] = {
        {2, 9, 24, 3, 1, PAD_NONE},  {2, 9, 24, 3, 0, PAD_RANDOM}, {3, 13, 16, 2, 1, PAD_WITH_EMPTY},
        {1, 1, 8, 1, 0, PAD_NONE},   {2, 37, 64, 1, 0, PAD_RANDOM}, {2, 37, 64, 1, 1, PAD_RANDOM},
    };
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const Shape* s = &shapes[k];
        char what[160];
        describe(what, sizeof what, s, "cpu vs naive");
        int kl_buf[8];
        const int* kl = make_key_len(kl_buf, s);
        float* qkv = (float*)mallocCheck(qkv_size(s) * sizeof(float));
        fill_uniform(qkv, qkv_size(s), -2, 2);
        float* out = alloc_nan(out_size(s));
        float* lse = alloc_nan(lse_size(s));
        double* out_ref = (double*)mallocCheck(out_size(s) * sizeof(double));
        double* lse_ref = (double*)mallocCheck(lse_size(s) * sizeof(double));
        attention_forward_cpu(out, lse, qkv, kl, s->B, s->T, s->C, s->H, s->causal);
        naive_attention(out_ref, lse_ref, qkv, kl, s);
        float* out_ref_f = (float*)mallocCheck(out_size(s) * sizeof(float));
        float* lse_ref_f = (float*)mallocCheck(lse_size(s) * sizeof(float));
        for (size_t i = 0; i < out_size(s); i++) out_ref_f[i] = (float)out_ref[i];
        for (size_t i = 0; i < lse_size(s); i++) lse_ref_f[i] = (float)lse_ref[i];
        const double e_out = rel_err(out, out_ref_f, out_size(s)), e_lse = lse_err(lse, lse_ref_f, lse_size(s));
        CHECK(e_out < 1e-5, "%s: out rel err %.3g", what, e_out);
        CHECK(e_lse < 1e-5, "%s: lse max err %.3g", what, e_lse);
        free(qkv), free(out), free(lse), free(out_ref), free(lse_ref), free(out_ref_f), free(lse_ref_f);
    }
}

// ------------------------------------------------------------------ gradient check (double)

// loss = sum(out * w) for the double instance of the reference.
static double loss_f64(const double* qkv, const double* w, const int* kl, const Shape* s, double* out, double* lse) {
    attention_forward_cpu_f64(out, lse, qkv, kl, s->B, s->T, s->C, s->H, s->causal);
    double loss = 0;
    for (size_t i = 0; i < out_size(s); i++) loss += out[i] * w[i];
    return loss;
}

static void test_cpu_gradients_f64(void) {
    const Shape shapes[] = {{2, 6, 12, 2, 1, PAD_NONE}, {2, 6, 12, 2, 0, PAD_RANDOM}, {2, 5, 8, 1, 1, PAD_WITH_EMPTY},
                            {1, 1, 4, 1, 0, PAD_NONE}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const Shape* s = &shapes[k];
        char what[160];
        describe(what, sizeof what, s, "gradient check");
        int kl_buf[8];
        const int* kl = make_key_len(kl_buf, s);
        const size_t nq = qkv_size(s), no = out_size(s);
        double* qkv = (double*)mallocCheck(nq * sizeof(double));
        double* w = (double*)mallocCheck(no * sizeof(double));
        double* out = (double*)mallocCheck(no * sizeof(double));
        double* lse = (double*)mallocCheck(lse_size(s) * sizeof(double));
        double* dqkv = (double*)mallocCheck(nq * sizeof(double));
        for (size_t i = 0; i < nq; i++) qkv[i] = rng_uniform(-2, 2);
        for (size_t i = 0; i < no; i++) w[i] = rng_uniform(-1, 1);
        loss_f64(qkv, w, kl, s, out, lse);
        for (size_t i = 0; i < nq; i++) dqkv[i] = NAN;
        attention_backward_cpu_f64(dqkv, w, out, lse, qkv, kl, s->B, s->T, s->C, s->H, s->causal);
        double* scratch_out = (double*)mallocCheck(no * sizeof(double));
        double* scratch_lse = (double*)mallocCheck(lse_size(s) * sizeof(double));
        const double eps = 1e-5;
        double worst = 0, scale = 0;
        for (size_t i = 0; i < nq; i++) {
            const double x = qkv[i];
            qkv[i] = x + eps;
            const double up = loss_f64(qkv, w, kl, s, scratch_out, scratch_lse);
            qkv[i] = x - eps;
            const double down = loss_f64(qkv, w, kl, s, scratch_out, scratch_lse);
            qkv[i] = x;
            const double numeric = (up - down) / (2 * eps);
            if (!isfinite(dqkv[i])) worst = INFINITY;
            worst = fmax(worst, fabs(numeric - dqkv[i]));
            scale = fmax(scale, fabs(numeric));
        }
        CHECK(scale > 0, "%s: every numerical gradient is zero", what);
        CHECK(worst <= 1e-7 * fmax(scale, 1.0), "%s: max |analytic - numeric| %.3g (gradient scale %.3g)", what,
              worst, scale);
        free(qkv), free(w), free(out), free(lse), free(dqkv), free(scratch_out), free(scratch_lse);
    }
}

// A batch row with key_len 0: every query is fully masked. out 0, lse -inf, zero gradients,
// and no NaN anywhere (also in the rows that are not masked).
static void test_cpu_fully_masked_rows(void) {
    const Shape s = {2, 7, 16, 2, 0, PAD_NONE};
    const int kl[2] = {0, 4};
    float* qkv = (float*)mallocCheck(qkv_size(&s) * sizeof(float));
    float* dout = (float*)mallocCheck(out_size(&s) * sizeof(float));
    fill_uniform(qkv, qkv_size(&s), -2, 2);
    fill_uniform(dout, out_size(&s), -1, 1);
    float* out = alloc_nan(out_size(&s));
    float* lse = alloc_nan(lse_size(&s));
    float* dqkv = alloc_nan(qkv_size(&s));
    for (int causal = 0; causal <= 1; causal++) {
        attention_forward_cpu(out, lse, qkv, kl, s.B, s.T, s.C, s.H, causal);
        attention_backward_cpu(dqkv, dout, out, lse, qkv, kl, s.B, s.T, s.C, s.H, causal);
        const size_t row0_out = (size_t)s.T * s.C, row0_qkv = (size_t)s.T * 3 * s.C;
        for (size_t i = 0; i < row0_out; i++) CHECK(out[i] == 0, "causal %d: out[%zu] = %g in a masked row", causal, i, out[i]);
        for (int i = 0; i < s.H * s.T; i++) CHECK(isinf(lse[i]) && lse[i] < 0, "causal %d: lse[%d] = %g", causal, i, lse[i]);
        for (size_t i = 0; i < row0_qkv; i++) CHECK(dqkv[i] == 0, "causal %d: dqkv[%zu] = %g", causal, i, dqkv[i]);
        for (size_t i = 0; i < out_size(&s); i++) CHECK(isfinite(out[i]), "causal %d: out[%zu] not finite", causal, i);
        for (size_t i = 0; i < qkv_size(&s); i++) CHECK(isfinite(dqkv[i]), "causal %d: dqkv[%zu] not finite", causal, i);
    }
    free(qkv), free(dout), free(out), free(lse), free(dqkv);
}

// ------------------------------------------------------------------ CUDA kernels vs the CPU reference

#ifdef TIPCAP_TEST_GPU
#define CUDA_WHERE "GPU"
#else
#define CUDA_WHERE "emulated"
#endif

static uint16_t bf16_bits(float x) {  // round to nearest even, as __float2bfloat16
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}
static float bf16_value(uint16_t bits) {
    const uint32_t u = (uint32_t)bits << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

// Host inputs are rounded to the act type first, so that the CPU reference sees exactly the
// numbers the kernel reads and the comparison measures the kernel's own error.
static void round_to_act(DType act, float* x, size_t n) {
    if (act == DTYPE_BF16)
        for (size_t i = 0; i < n; i++) x[i] = bf16_value(bf16_bits(x[i]));
}

static void* upload_act(Backend* be, const float* x, size_t n) {
    void* dev = be->alloc(be, n * dtype_size(be->act));
    if (be->act == DTYPE_BF16) {
        uint16_t* bits = (uint16_t*)mallocCheck(n * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++) bits[i] = bf16_bits(x[i]);
        be->upload(be, dev, bits, n * sizeof(uint16_t));
        free(bits);
    } else {
        be->upload(be, dev, x, n * sizeof(float));
    }
    return dev;
}

static void download_act(Backend* be, float* x, const void* dev, size_t n) {
    if (be->act == DTYPE_BF16) {
        uint16_t* bits = (uint16_t*)mallocCheck(n * sizeof(uint16_t));
        be->download(be, bits, dev, n * sizeof(uint16_t));
        for (size_t i = 0; i < n; i++) x[i] = bf16_value(bits[i]);
        free(bits);
    } else {
        be->download(be, x, dev, n * sizeof(float));
    }
}

static void poison_device(Backend* be, void* dev, size_t bytes) {  // NaN in fp32 and in bf16
    unsigned char* junk = (unsigned char*)mallocCheck(bytes);
    memset(junk, 0xff, bytes);
    be->upload(be, dev, junk, bytes);
    free(junk);
}

typedef struct {
    float *out, *lse, *dqkv;  // host copies, fp32
} Outputs;

static void outputs_alloc(Outputs* o, const Shape* s) {
    o->out = alloc_nan(out_size(s));
    o->lse = alloc_nan(lse_size(s));
    o->dqkv = alloc_nan(qkv_size(s));
}
static void outputs_free(Outputs* o) { free(o->out), free(o->lse), free(o->dqkv); }

// Forward then backward through the backend's table, outputs poisoned before each call.
static void cuda_run(Backend* be, const Shape* s, const float* qkv, const float* dout, const int* key_len, Outputs* o) {
    const size_t act = dtype_size(be->act);
    void* d_qkv = upload_act(be, qkv, qkv_size(s));
    void* d_dout = upload_act(be, dout, out_size(s));
    void* d_out = be->alloc(be, out_size(s) * act);
    void* d_dqkv = be->alloc(be, qkv_size(s) * act);
    float* d_lse = (float*)be->alloc(be, lse_size(s) * sizeof(float));
    int* d_key_len = NULL;
    if (key_len) {
        d_key_len = (int*)be->alloc(be, (size_t)s->B * sizeof(int));
        be->upload(be, d_key_len, key_len, (size_t)s->B * sizeof(int));
    }
    poison_device(be, d_out, out_size(s) * act);
    poison_device(be, d_lse, lse_size(s) * sizeof(float));
    be->attention_forward(be, d_out, d_lse, d_qkv, d_key_len, s->B, s->T, s->C, s->H, s->causal);
    poison_device(be, d_dqkv, qkv_size(s) * act);
    be->attention_backward(be, d_dqkv, d_dout, d_out, d_lse, d_qkv, d_key_len, s->B, s->T, s->C, s->H, s->causal);
    download_act(be, o->out, d_out, out_size(s));
    be->download(be, o->lse, d_lse, lse_size(s) * sizeof(float));
    download_act(be, o->dqkv, d_dqkv, qkv_size(s));
    be->free(be, d_qkv), be->free(be, d_dout), be->free(be, d_out), be->free(be, d_dqkv), be->free(be, d_lse);
    if (d_key_len) be->free(be, d_key_len);
}

typedef struct {
    float *qkv, *dout;
    int key_len_buf[8];
    const int* key_len;
} Inputs;

static void inputs_make(Inputs* in, const Shape* s, DType act) {
    in->qkv = (float*)mallocCheck(qkv_size(s) * sizeof(float));
    in->dout = (float*)mallocCheck(out_size(s) * sizeof(float));
    fill_uniform(in->qkv, qkv_size(s), -2, 2);
    fill_uniform(in->dout, out_size(s), -1, 1);
    round_to_act(act, in->qkv, qkv_size(s));
    round_to_act(act, in->dout, out_size(s));
    in->key_len = make_key_len(in->key_len_buf, s);
}
static void inputs_free(Inputs* in) { free(in->qkv), free(in->dout); }

// The kernel's outputs against the CPU reference. The reference backward takes the kernel's
// own out and lse (as the kernel's backward does), so each output is checked on its own.
static void check_against_cpu(const Shape* s, DType act, const Inputs* in, const Outputs* o, double tol,
                              double lse_tol, const char* path) {
    char what[160], where[64];
    snprintf(where, sizeof where, "%s%s %s", CUDA_WHERE, path, act == DTYPE_BF16 ? "bf16" : "fp32");
    describe(what, sizeof what, s, where);
    Outputs ref;
    outputs_alloc(&ref, s);
    attention_forward_cpu(ref.out, ref.lse, in->qkv, in->key_len, s->B, s->T, s->C, s->H, s->causal);
    attention_backward_cpu(ref.dqkv, in->dout, o->out, o->lse, in->qkv, in->key_len, s->B, s->T, s->C, s->H, s->causal);
    const double e_out = rel_err(o->out, ref.out, out_size(s));
    const double e_lse = lse_err(o->lse, ref.lse, lse_size(s));
    const double e_dqkv = rel_err(o->dqkv, ref.dqkv, qkv_size(s));
    CHECK(e_out < tol, "%s: out rel err %.3g (bound %.1g)", what, e_out, tol);
    CHECK(e_lse < lse_tol, "%s: lse max err %.3g (bound %.1g)", what, e_lse, lse_tol);
    CHECK(e_dqkv < tol, "%s: dqkv rel err %.3g (bound %.1g)", what, e_dqkv, tol);
    if (s->pad == PAD_WITH_EMPTY) {  // batch row 0 has no valid key: exact zeros and -inf
        int bad = 0;
        for (size_t i = 0; i < (size_t)s->T * s->C; i++) bad += o->out[i] != 0;
        for (size_t i = 0; i < (size_t)s->T * 3 * s->C; i++) bad += o->dqkv[i] != 0;
        for (size_t i = 0; i < (size_t)s->H * s->T; i++) bad += !(isinf(o->lse[i]) && o->lse[i] < 0);
        CHECK(bad == 0, "%s: %d values of the fully masked batch row are not 0 (out, dqkv) or -inf (lse)", what, bad);
    }
    outputs_free(&ref);
}

// TIPCAP_TEST_SMALL=1 leaves out the shapes whose qkv (the largest buffer) is large.
static int left_out(const Shape* s) {
    return test_leaves_out(qkv_size(s), "B=%d T=%d C=%d H=%d", s->B, s->T, s->C, s->H);
}

static const Shape cuda_shapes[] = {
    {2, 37, 128, 2, 1, PAD_NONE},        // decoder: causal, hs 64, T not a multiple of the tile
    {2, 37, 128, 2, 0, PAD_RANDOM},      // encoder: bidirectional with key padding
    {3, 37, 128, 2, 1, PAD_WITH_EMPTY},  // causal with padding; batch row 0 fully masked
    {1, 1, 64, 1, 1, PAD_NONE},          // T = 1
    {2, 1, 64, 2, 0, PAD_RANDOM},        // T = 1, hs 32
    {1, 150, 64, 1, 1, PAD_RANDOM},      // three tiles, causal
    {1, 130, 64, 1, 0, PAD_NONE},        // three tiles, bidirectional
    {2, 45, 72, 3, 0, PAD_RANDOM},       // hs 24
    {2, 33, 60, 3, 1, PAD_NONE},         // hs 20: not a multiple of 8
    {1, 70, 240, 2, 1, PAD_RANDOM},      // hs 120: the 128-channel kernels, two tiles
    {2, 20, 256, 2, 0, PAD_WITH_EMPTY},  // hs 128
    {2, 37, 130, 2, 1, PAD_RANDOM},      // hs 65: the smallest head of the 128-channel kernels
    {1, 75, 192, 2, 0, PAD_RANDOM},      // hs 96, T not a multiple of the small tiles (32, 16)
};

static void cuda_vs_cpu(DType act, double tol) {
    Backend* be = backend_cuda_create(act);
    NEED_GPU(be);
    for (size_t k = 0; k < sizeof cuda_shapes / sizeof *cuda_shapes; k++) {
        const Shape* s = &cuda_shapes[k];
        if (left_out(s)) continue;
        Inputs in;
        inputs_make(&in, s, act);
        Outputs o;
        outputs_alloc(&o, s);
        cuda_run(be, s, in.qkv, in.dout, in.key_len, &o);
        check_against_cpu(s, act, &in, &o, tol, 2e-5, "");
        outputs_free(&o);
        inputs_free(&in);
    }
    be->destroy(be);
}

static void test_cuda_fp32(void) { cuda_vs_cpu(DTYPE_F32, 1e-5); }
static void test_cuda_bf16(void) { cuda_vs_cpu(DTYPE_BF16, 5e-3); }

// Head sizes 65-128 on each device profile of the emulation: 64-row tiles take 116 KiB (forward) and
// 150 KiB (backward) of shared memory, which sm_80 (163 KiB) and sm_90 (227 KiB) allow and sm_86 and
// sm_89 (99 KiB) refuse, so there the launchers take the small tiles. (The default profile, the most
// restrictive of all, runs the small tiles in test_cuda_fp32; a GPU runs the tiles it allows there.)
static void test_cuda_tiles_per_device(void) {
#ifdef TIPCAP_TEST_GPU
    SKIP("checks the emulation's architecture profiles");
#else
    const char* profiles[] = {"sm_80", "sm_86", "sm_89", "sm_90"};
    for (int d = 0; d < 2; d++) {
        const DType act = d ? DTYPE_BF16 : DTYPE_F32;
        Backend* be = backend_cuda_create(act);
        if (!be) SKIP("no CUDA GPU");
        for (size_t p = 0; p < sizeof profiles / sizeof *profiles; p++) {
            REQUIRE(etk_set_device(profiles[p]) == 0, "no device profile %s", profiles[p]);
            char path[32];
            snprintf(path, sizeof path, " %s", profiles[p]);
            for (size_t k = 0; k < sizeof cuda_shapes / sizeof *cuda_shapes; k++) {
                const Shape* s = &cuda_shapes[k];
                if (s->C / s->H <= 64) continue;
                Inputs in;
                inputs_make(&in, s, act);
                Outputs o;
                outputs_alloc(&o, s);
                cuda_run(be, s, in.qkv, in.dout, in.key_len, &o);
                check_against_cpu(s, act, &in, &o, d ? 5e-3 : 1e-5, 2e-5, path);
                outputs_free(&o);
                inputs_free(&in);
            }
        }
        REQUIRE(etk_set_device("all") == 0, "no device profile all");
        be->destroy(be);
    }
#endif
}

// Two runs on the same inputs give the same bits (no atomics, fixed summation order).
static void test_cuda_deterministic(void) {
    for (int d = 0; d < 2; d++) {
        const DType act = d ? DTYPE_BF16 : DTYPE_F32;
        const Shape s = {2, 100, 128, 2, d, PAD_RANDOM};
        if (left_out(&s)) continue;
        Backend* be = backend_cuda_create(act);
        NEED_GPU(be);
        Inputs in;
        inputs_make(&in, &s, act);
        Outputs a, b;
        outputs_alloc(&a, &s);
        outputs_alloc(&b, &s);
        cuda_run(be, &s, in.qkv, in.dout, in.key_len, &a);
        cuda_run(be, &s, in.qkv, in.dout, in.key_len, &b);
        CHECK(!memcmp(a.out, b.out, out_size(&s) * sizeof(float)), "dtype %d: out differs between runs", act);
        CHECK(!memcmp(a.lse, b.lse, lse_size(&s) * sizeof(float)), "dtype %d: lse differs between runs", act);
        CHECK(!memcmp(a.dqkv, b.dqkv, qkv_size(&s) * sizeof(float)), "dtype %d: dqkv differs between runs", act);
        outputs_free(&a), outputs_free(&b);
        inputs_free(&in);
        be->destroy(be);
    }
}

// cuDNN's fused attention (TIPCAP_ATTENTION=cudnn, kernels/attention_cudnn.h) against the CPU
// reference in bf16, on a GPU: the shapes above that it takes (every row has a valid key), and
// GPT-2 small's decoder and interaction-encoder shapes; then two runs give the same bits.
#if defined(TIPCAP_TEST_GPU) && defined(TIPCAP_HAVE_CUDNN_FRONTEND)
static void cudnn_vs_cpu(Backend* be, const Shape* s) {
    if (left_out(s)) return;
    Inputs in;
    inputs_make(&in, s, DTYPE_BF16);
    Outputs a, b;
    outputs_alloc(&a, s);
    outputs_alloc(&b, s);
    cuda_run(be, s, in.qkv, in.dout, in.key_len, &a);
    check_against_cpu(s, DTYPE_BF16, &in, &a, 5e-3, 1e-3, " cudnn");
    cuda_run(be, s, in.qkv, in.dout, in.key_len, &b);
    char what[160];
    describe(what, sizeof what, s, "cudnn");
    CHECK(!memcmp(a.out, b.out, out_size(s) * sizeof(float)) && !memcmp(a.dqkv, b.dqkv, qkv_size(s) * sizeof(float)),
          "%s: two runs differ", what);
    outputs_free(&a), outputs_free(&b);
    inputs_free(&in);
}
#endif

static void test_cudnn_bf16(void) {
#if !defined(TIPCAP_TEST_GPU)
    SKIP("cuDNN runs only on a GPU (the CUDA emulation has no cuDNN)");
#elif !defined(TIPCAP_HAVE_CUDNN_FRONTEND)
    SKIP("this build has no cuDNN attention (cudnn_frontend.h was not found)");
#else
    setenv("TIPCAP_ATTENTION", "cudnn", 1);
    Backend* be = backend_cuda_create(DTYPE_BF16);
    unsetenv("TIPCAP_ATTENTION");
    NEED_GPU(be);
    for (size_t k = 0; k < sizeof cuda_shapes / sizeof *cuda_shapes; k++)
        if (cuda_shapes[k].pad != PAD_WITH_EMPTY) cudnn_vs_cpu(be, &cuda_shapes[k]);
    const Shape gpt2[] = {{4, 50, 768, 12, 1, PAD_NONE}, {4, 18, 768, 12, 0, PAD_RANDOM}};
    for (size_t k = 0; k < sizeof gpt2 / sizeof *gpt2; k++) cudnn_vs_cpu(be, &gpt2[k]);
    // A shape cuDNN refuses runs on tipcap's kernels (TIPCAP_CUDNN_REFUSE stands in for the refusal;
    // graphs are cached by shape, so each mode takes a new one): a refused forward, a refused
    // backward after cuDNN's forward (tipcap's backward then reads its own forward's output), both.
    const char* modes[] = {"forward", "backward", "both"};
    for (int k = 0; k < 3; k++) {
        setenv("TIPCAP_CUDNN_REFUSE", modes[k], 1);
        const Shape refused = {2, 24 + 8 * k, 256, 4, k != 1, k == 2 ? PAD_RANDOM : PAD_NONE};
        cudnn_vs_cpu(be, &refused);
    }
    unsetenv("TIPCAP_CUDNN_REFUSE");
    be->destroy(be);
#endif
}

// TIPCAP_ATTENTION takes tipcap or cudnn; cudnn where the build has no cuDNN attention (always
// under the emulation) is an error that says so, not a silent fallback.
static void create_with_bogus_choice(void* arg) {
    setenv("TIPCAP_ATTENTION", (const char*)arg, 1);
    if (!backend_cuda_create(DTYPE_BF16)) exit(3);
}
static void test_attention_choice_errors(void) {
    char err[512];
    int rc = run_captured(create_with_bogus_choice, (void*)"flash", err, sizeof err);
    NEED_GPU(rc != 3);
    CHECK(rc == 1 && strstr(err, "TIPCAP_ATTENTION=flash: tipcap or cudnn"), "rc %d, stderr: %s", rc, err);
#ifndef TIPCAP_TEST_GPU
    rc = run_captured(create_with_bogus_choice, (void*)"cudnn", err, sizeof err);
    CHECK(rc == 1 && strstr(err, "the CUDA emulation has no cuDNN"), "rc %d, stderr: %s", rc, err);
#endif
}

// Shape errors stop with a message that names the problem.
static void forward_head_size_136(void* arg) {
    attention_forward_cuda(NULL, NULL, NULL, NULL, 1, 4, 272, 2, 1, DTYPE_F32);
}
static void backward_c_not_multiple_of_h(void* arg) {
    attention_backward_cuda(NULL, NULL, NULL, NULL, NULL, NULL, 1, 4, 100, 3, 1, DTYPE_BF16);
}
static void test_cuda_bad_shapes(void) {
    char err[512];
    int rc = run_captured(forward_head_size_136, NULL, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "head size C/H = 136 is not supported"), "rc %d, stderr: %s", rc, err);
    rc = run_captured(backward_c_not_multiple_of_h, NULL, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "C must be a positive multiple of H"), "rc %d, stderr: %s", rc, err);
}

// The CPU backend's table entries are the reference.
static void test_cpu_backend_table(void) {
    Backend* be = backend_cpu_create();
    const Shape s = {2, 11, 32, 2, 1, PAD_RANDOM};
    Inputs in;
    inputs_make(&in, &s, DTYPE_F32);
    Outputs o, ref;
    outputs_alloc(&o, &s);
    outputs_alloc(&ref, &s);
    be->attention_forward(be, o.out, o.lse, in.qkv, in.key_len, s.B, s.T, s.C, s.H, s.causal);
    be->attention_backward(be, o.dqkv, in.dout, o.out, o.lse, in.qkv, in.key_len, s.B, s.T, s.C, s.H, s.causal);
    attention_forward_cpu(ref.out, ref.lse, in.qkv, in.key_len, s.B, s.T, s.C, s.H, s.causal);
    attention_backward_cpu(ref.dqkv, in.dout, ref.out, ref.lse, in.qkv, in.key_len, s.B, s.T, s.C, s.H, s.causal);
    CHECK(!memcmp(o.out, ref.out, out_size(&s) * sizeof(float)), "out");
    CHECK(!memcmp(o.lse, ref.lse, lse_size(&s) * sizeof(float)), "lse");
    CHECK(!memcmp(o.dqkv, ref.dqkv, qkv_size(&s) * sizeof(float)), "dqkv");
    outputs_free(&o), outputs_free(&ref);
    inputs_free(&in);
    be->destroy(be);
}

// The CUDA cases again with the emulator's shuffle mode on: fibers resume in a random order at
// every barrier and warp exchange, so a missing __syncthreads() or a race changes the numbers
// (and breaks the bitwise determinism check). The emulator reads the mode from the environment
// when it starts, so the cases run in a child process (rerun_shuffled in tests/harness.h).
static void test_cuda_shuffle_mode(void) {
#ifdef TIPCAP_TEST_GPU
    SKIP("shuffle mode is a feature of the CUDA emulation");
#else
    static char log[1 << 16];
    CHECK(rerun_shuffled(log, sizeof log), "the CUDA cases failed under the emulator's shuffle mode: %s", log);
#endif
}

int main(int argc, char** argv) {
    rng_state = test_seed();
    if (argc == 2 && !strcmp(argv[1], SHUFFLED_CHILD_FLAG)) {  // the child of test_cuda_shuffle_mode
        RUN(test_cuda_fp32);
        RUN(test_cuda_bf16);
        RUN(test_cuda_deterministic);
        return test_summary();
    }
    RUN(test_cuda_bad_shapes);  // first: these fork, best done before CUDA or the emulator starts threads
    RUN(test_attention_choice_errors);
    RUN(test_cpu_matches_naive);
    RUN(test_cpu_gradients_f64);
    RUN(test_cpu_fully_masked_rows);
    RUN(test_cpu_backend_table);
    RUN(test_cuda_fp32);
    RUN(test_cuda_bf16);
    RUN(test_cuda_tiles_per_device);
    RUN(test_cuda_deterministic);
    RUN(test_cudnn_bf16);
    RUN(test_cuda_shuffle_mode);
    return test_summary();
}
