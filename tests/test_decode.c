// Incremental-decoding ops (kernels/decode.*): cached attention, rows gather, log-softmax top-k.
//   - the CPU cached attention fed a sequence in chunks (a prefix, then one or three tokens at a
//     time) equals the CPU full-sequence causal attention: the property the decoder relies on;
//   - the CUDA kernels (under the CPU emulation of CUDA in `make test`, on the GPU in
//     `make test-gpu`) against the CPU reference in fp32 and bf16, caches included, and two runs
//     bit for bit;
//   - top-k against a sort of the full log-softmax (double), ties broken by the smaller id;
//   - the emulated kernels once more in the emulator's shuffle mode (a child process).
// Fresh random inputs from the printed seed; outputs poisoned with NaN before every run.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "kernels/attention.h"
#include "kernels/backend.h"
#include "kernels/cast.h"
#include "kernels/decode.h"
#include "tests/harness.h"

#ifdef TIPCAP_TEST_GPU
#define CUDA_WHERE "GPU"
#else
#define CUDA_WHERE "emulated"
#endif

#define TOL_F32 2e-5   // fp32 storage: summation order only
#define TOL_BF16 1e-2  // bf16 storage: the output rounded to 8 bits (inputs are rounded for both sides)
#define TOPK_VALUE_TOL 2e-5  // log-sum-exp summed in another order (logits are the same numbers)

// ------------------------------------------------------------------ random inputs

static uint64_t rng_state;
static uint64_t rng_next(void) {  // splitmix64
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_uniform(float lo, float hi) { return lo + (hi - lo) * (float)((rng_next() >> 40) * 0x1.0p-24); }
static int rng_int(int n) { return (int)(rng_next() % (uint64_t)n); }

static float* random_floats(size_t n, float lo, float hi) {
    float* x = (float*)mallocCheck((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(lo, hi);
    return x;
}

static float* nan_floats(size_t n) {
    float* x = (float*)mallocCheck((n ? n : 1) * sizeof(float));
    memset(x, 0xff, (n ? n : 1) * sizeof(float));  // NaN: an output the code under test fails to write stays NaN
    return x;
}

// Host inputs are rounded to the act type, so that the CPU reference sees exactly the numbers
// the kernel reads and the comparison measures the kernel's own error.
static void round_to_act(DType act, float* x, size_t n) {
    if (act == DTYPE_BF16)
        for (size_t i = 0; i < n; i++) x[i] = bf16_to_float(bf16_from_float(x[i]));
}

static const char* act_name(DType act) { return act == DTYPE_BF16 ? "bf16" : "fp32"; }

// ------------------------------------------------------------------ backends and device buffers

static Backend* gpu[2];  // by DType
static int gpu_probed;

static Backend* cuda_backend(DType act) {
    if (!gpu_probed) {
        gpu_probed = 1;
        gpu[DTYPE_F32] = backend_cuda_create(DTYPE_F32);
        gpu[DTYPE_BF16] = gpu[DTYPE_F32] ? backend_cuda_create(DTYPE_BF16) : NULL;
    }
    return gpu[act];
}

// x [n] into act elements dev[offset .. offset+n-1]
static void upload_act_at(Backend* be, void* dev, size_t offset, const float* x, size_t n) {
    char* dst = (char*)dev + offset * dtype_size(be->act);
    if (be->act == DTYPE_BF16) {
        uint16_t* bits = (uint16_t*)mallocCheck((n ? n : 1) * sizeof(uint16_t));
        cast_f32_to_bf16_cpu(bits, x, n);
        be->upload(be, dst, bits, n * sizeof(uint16_t));
        free(bits);
    } else {
        be->upload(be, dst, x, n * sizeof(float));
    }
}

static void* upload_act(Backend* be, const float* x, size_t n) {
    void* dev = be->alloc(be, (n ? n : 1) * dtype_size(be->act));
    upload_act_at(be, dev, 0, x, n);
    return dev;
}

static void download_act(Backend* be, float* x, const void* dev, size_t n) {
    if (be->act == DTYPE_BF16) {
        uint16_t* bits = (uint16_t*)mallocCheck((n ? n : 1) * sizeof(uint16_t));
        be->download(be, bits, dev, n * sizeof(uint16_t));
        cast_bf16_to_f32_cpu(x, bits, n);
        free(bits);
    } else {
        be->download(be, x, dev, n * sizeof(float));
    }
}

static void poison_device(Backend* be, void* dev, size_t bytes) {  // NaN in fp32 and in bf16; -1 as int
    unsigned char* junk = (unsigned char*)mallocCheck(bytes ? bytes : 1);
    memset(junk, 0xff, bytes);
    be->upload(be, dev, junk, bytes);
    free(junk);
}

static int* upload_ints(Backend* be, const int* x, size_t n) {
    int* dev = (int*)be->alloc(be, (n ? n : 1) * sizeof(int));
    be->upload(be, dev, x, n * sizeof(int));
    return dev;
}

static size_t count_bit_differences(const void* a, const void* b, size_t n_words) {
    size_t bad = 0;
    for (size_t i = 0; i < n_words; i++) bad += memcmp((const char*)a + 4 * i, (const char*)b + 4 * i, 4) != 0;
    return bad;
}

// ------------------------------------------------------------------ cached attention: CPU, chunked = full

typedef struct {
    int B, T, C, H, prefix;  // sequence of T tokens: a prefix chunk, then 1, 3, 1, 1, ... tokens
} ChunkCase;

static void test_cpu_chunked_matches_full(void) {
    const ChunkCase cases[] = {
        {1, 9, 64, 1, 0},    // hs 64, from an empty cache one token at a time
        {3, 11, 128, 2, 5},  // hs 64, odd prefix
        {3, 13, 60, 3, 1},   // hs 20
        {2, 8, 96, 1, 3},    // hs 96
        {1, 6, 8, 2, 6},     // the whole sequence as one chunk, hs 4
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const ChunkCase* s = &cases[c];
        const int B = s->B, T = s->T, C = s->C, H = s->H, Tmax = T + 2;
        float* qkv = random_floats((size_t)B * T * 3 * C, -2, 2);
        float* full = nan_floats((size_t)B * T * C);
        float* lse = nan_floats((size_t)B * H * T);
        attention_forward_cpu(full, lse, qkv, NULL, B, T, C, H, 1);
        float* kcache = nan_floats((size_t)B * Tmax * C);
        float* vcache = nan_floats((size_t)B * Tmax * C);
        float* chunk = (float*)mallocCheck((size_t)B * T * 3 * C * sizeof(float));  // [B,Tn,3C]
        float* out = nan_floats((size_t)B * T * C);                                   // [B,Tn,C] chunk outputs
        float* got = nan_floats((size_t)B * T * C);                                   // reassembled [B,T,C]
        int steps = 0;
        for (int past = 0; past < T; steps++) {
            int Tn = steps == 0 && s->prefix > 0 ? s->prefix : (steps == 2 ? 3 : 1);
            if (past + Tn > T) Tn = T - past;
            for (int b = 0; b < B; b++)
                memcpy(chunk + (size_t)b * Tn * 3 * C, qkv + ((size_t)b * T + past) * 3 * C,
                       (size_t)Tn * 3 * C * sizeof(float));
            memset(out, 0xff, (size_t)B * Tn * C * sizeof(float));
            attention_forward_cached_cpu(out, chunk, kcache, vcache, past, B, Tn, Tmax, C, H);
            for (int b = 0; b < B; b++)
                memcpy(got + ((size_t)b * T + past) * C, out + (size_t)b * Tn * C, (size_t)Tn * C * sizeof(float));
            past += Tn;
        }
        const double err = rel_err(got, full, (size_t)B * T * C);
        CHECK(err < 1e-6, "B=%d T=%d C=%d H=%d prefix %d: chunked vs full rel err %.3g", B, T, C, H, s->prefix, err);
        // the cache holds every token's k and v; the positions past T are untouched
        size_t bad = 0, touched = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < Tmax; t++)
                for (int d = 0; d < C; d++) {
                    const size_t at = ((size_t)b * Tmax + t) * C + d;
                    if (t < T) {
                        bad += kcache[at] != qkv[((size_t)b * T + t) * 3 * C + C + d];
                        bad += vcache[at] != qkv[((size_t)b * T + t) * 3 * C + 2 * C + d];
                    } else {
                        touched += !isnan(kcache[at]) + !isnan(vcache[at]);
                    }
                }
        CHECK(bad == 0 && touched == 0, "case %zu: %zu cache values differ from k/v, %zu written past T", c, bad,
              touched);
        free(qkv), free(full), free(lse), free(kcache), free(vcache), free(chunk), free(out), free(got);
    }
}

// ------------------------------------------------------------------ cached attention: CUDA vs CPU

typedef struct {
    int B, Tn, past, Tmax, C, H;
    int misalign;  // qkv starts one element into its buffer: not 16-byte aligned (the scalar loads)
} CachedCase;

static const CachedCase cached_cases[] = {
    {1, 1, 0, 8, 64, 1, 0},       // hs 64, a single key
    {3, 1, 37, 40, 128, 2, 0},    // hs 64, one new token, odd past
    {3, 3, 0, 5, 128, 2, 0},      // hs 64, three tokens from an empty cache
    {1, 3, 45, 50, 64, 1, 1},     // hs 64 misaligned
    {3, 3, 45, 49, 60, 3, 0},     // hs 20: not a multiple of 8
    {2, 3, 101, 110, 192, 2, 0},  // hs 96: the 128-channel kernel
    {2, 1, 9, 12, 256, 2, 0},     // hs 128
    {1, 1, 300, 301, 240, 2, 0},  // hs 120, a full cache
    {1, 1, 1023, 1024, 128, 2, 0},  // 1024 positions
};

typedef struct {
    float *qkv, *kcache, *vcache;  // inputs: host fp32, rounded to the act type
} CachedInputs;

// qkv random; cache positions < past random, past .. past+Tn-1 NaN (to be written), later ones
// random (to be left alone).
static void cached_inputs_make(CachedInputs* in, const CachedCase* s, DType act) {
    const size_t n_qkv = (size_t)s->B * s->Tn * 3 * s->C, n_cache = (size_t)s->B * s->Tmax * s->C;
    in->qkv = random_floats(n_qkv, -2, 2);
    in->kcache = random_floats(n_cache, -2, 2);
    in->vcache = random_floats(n_cache, -2, 2);
    round_to_act(act, in->qkv, n_qkv);
    round_to_act(act, in->kcache, n_cache);
    round_to_act(act, in->vcache, n_cache);
    for (int b = 0; b < s->B; b++)
        for (int t = s->past; t < s->past + s->Tn; t++) {
            memset(in->kcache + ((size_t)b * s->Tmax + t) * s->C, 0xff, s->C * sizeof(float));
            memset(in->vcache + ((size_t)b * s->Tmax + t) * s->C, 0xff, s->C * sizeof(float));
        }
}
static void cached_inputs_free(CachedInputs* in) { free(in->qkv), free(in->kcache), free(in->vcache); }

// Runs the backend's op twice on the same inputs (outputs poisoned before each); out, kcache,
// vcache receive the first run's results as fp32, out_again the second run's out.
static void cached_run(Backend* be, const CachedCase* s, const CachedInputs* in, float* out, float* out_again,
                       float* kcache, float* vcache) {
    const size_t n_qkv = (size_t)s->B * s->Tn * 3 * s->C, n_cache = (size_t)s->B * s->Tmax * s->C;
    const size_t n_out = (size_t)s->B * s->Tn * s->C, act = dtype_size(be->act);
    void* qkv_buf = be->alloc(be, (n_qkv + 1) * act);
    upload_act_at(be, qkv_buf, s->misalign, in->qkv, n_qkv);
    const void* d_qkv = (const char*)qkv_buf + s->misalign * act;
    void* d_k = upload_act(be, in->kcache, n_cache);
    void* d_v = upload_act(be, in->vcache, n_cache);
    void* d_out = be->alloc(be, n_out * act);
    for (int run = 0; run < 2; run++) {
        poison_device(be, d_out, n_out * act);
        be->attention_forward_cached(be, d_out, d_qkv, d_k, d_v, s->past, s->B, s->Tn, s->Tmax, s->C, s->H);
        download_act(be, run ? out_again : out, d_out, n_out);
        if (run == 0) {
            download_act(be, kcache, d_k, n_cache);
            download_act(be, vcache, d_v, n_cache);
        }
    }
    be->free(be, qkv_buf), be->free(be, d_k), be->free(be, d_v), be->free(be, d_out);
}

static void cached_vs_cpu(DType act, double tol) {
    Backend* be = cuda_backend(act);
    NEED_GPU(be);
    for (size_t c = 0; c < sizeof cached_cases / sizeof *cached_cases; c++) {
        const CachedCase* s = &cached_cases[c];
        char what[200];
        snprintf(what, sizeof what, "%s %s B=%d Tn=%d past=%d Tmax=%d C=%d H=%d (hs %d)%s", CUDA_WHERE,
                 act_name(act), s->B, s->Tn, s->past, s->Tmax, s->C, s->H, s->C / s->H,
                 s->misalign ? " misaligned" : "");
        const size_t n_cache = (size_t)s->B * s->Tmax * s->C, n_out = (size_t)s->B * s->Tn * s->C;
        const size_t n_qkv = (size_t)s->B * s->Tn * 3 * s->C;
        if (test_leaves_out(n_cache > n_qkv ? n_cache : n_qkv, "%s", what)) continue;
        CachedInputs in;
        cached_inputs_make(&in, s, act);
        float* ref_out = nan_floats(n_out);
        float* ref_k = (float*)mallocCheck(n_cache * sizeof(float));
        float* ref_v = (float*)mallocCheck(n_cache * sizeof(float));
        memcpy(ref_k, in.kcache, n_cache * sizeof(float));
        memcpy(ref_v, in.vcache, n_cache * sizeof(float));
        attention_forward_cached_cpu(ref_out, in.qkv, ref_k, ref_v, s->past, s->B, s->Tn, s->Tmax, s->C, s->H);
        float *out = nan_floats(n_out), *again = nan_floats(n_out);
        float *k = nan_floats(n_cache), *v = nan_floats(n_cache);
        cached_run(be, s, &in, out, again, k, v);
        const double err = rel_err(out, ref_out, n_out);
        CHECK(err < tol, "%s: out rel err %.3g (bound %.1g)", what, err, tol);
        const size_t bad_k = count_bit_differences(k, ref_k, n_cache), bad_v = count_bit_differences(v, ref_v, n_cache);
        CHECK(bad_k == 0 && bad_v == 0, "%s: %zu key and %zu value cache entries differ from the CPU's", what, bad_k,
              bad_v);
        CHECK(count_bit_differences(out, again, n_out) == 0, "%s: two runs differ", what);
        cached_inputs_free(&in);
        free(ref_out), free(ref_k), free(ref_v), free(out), free(again), free(k), free(v);
    }
}

static void test_cuda_cached_fp32(void) { cached_vs_cpu(DTYPE_F32, TOL_F32); }
static void test_cuda_cached_bf16(void) { cached_vs_cpu(DTYPE_BF16, TOL_BF16); }

// ------------------------------------------------------------------ rows gather

typedef struct {
    int n_src, n, row, offset;  // offset: dst starts `offset` elements into its buffer
} GatherCase;

static void test_rows_gather(void) {
    const GatherCase cases[] = {
        {1, 1, 1, 0}, {7, 9, 7, 1}, {4, 3, 64, 0}, {6, 5, 1000, 0}, {3, 11, 33, 1}, {5, 1, 8, 2},
        // rows of more than 512 words (16-byte words in fp32, 4 and 2 bytes unaligned), so that the
        // column loop takes several passes under TIPCAP_EMU_MAX_BLOCKS=2
        {4, 3, 2304, 0}, {3, 4, 3001, 1},
    };
    NEED_GPU(cuda_backend(DTYPE_F32));
    Backend* cpu = backend_cpu_create();
    for (int a = DTYPE_F32; a <= DTYPE_BF16; a++) {
        Backend* be = cuda_backend((DType)a);
        for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
            const GatherCase* s = &cases[c];
            const size_t n_src = (size_t)s->n_src * s->row, n_dst = (size_t)s->n * s->row;
            if (test_leaves_out(n_src > n_dst ? n_src : n_dst, "rows gather n_src=%d n=%d row=%d", s->n_src, s->n, s->row))
                continue;
            const size_t n_buf = n_dst + s->offset + 1;  // one guard element after the rows too
            float* src = random_floats(n_src, -3, 3);
            round_to_act((DType)a, src, n_src);
            int* idx = (int*)mallocCheck(s->n * sizeof(int));
            for (int i = 0; i < s->n; i++) idx[i] = rng_int(s->n_src);
            float* guard = random_floats(n_buf, -3, 3);  // what dst's buffer holds before
            round_to_act((DType)a, guard, n_buf);
            float* want = (float*)mallocCheck(n_buf * sizeof(float));
            memcpy(want, guard, n_buf * sizeof(float));
            rows_gather_cpu(want + s->offset, src, idx, s->n, s->row * sizeof(float));

            void* d_src = upload_act(be, src, n_src);
            void* d_dst = upload_act(be, guard, n_buf);
            int* d_idx = upload_ints(be, idx, s->n);
            be->rows_gather(be, (char*)d_dst + s->offset * dtype_size(be->act), d_src, d_idx, s->n, s->row);
            float* got = nan_floats(n_buf);
            download_act(be, got, d_dst, n_buf);
            CHECK(count_bit_differences(got, want, n_buf) == 0,
                  "%s %s n_src=%d n=%d row=%d offset %d: %zu elements differ (rows or the guards around them)",
                  CUDA_WHERE, act_name((DType)a), s->n_src, s->n, s->row, s->offset,
                  count_bit_differences(got, want, n_buf));
            if (a == DTYPE_F32) {  // the CPU backend's table entry
                float* host = (float*)mallocCheck(n_buf * sizeof(float));
                memcpy(host, guard, n_buf * sizeof(float));
                cpu->rows_gather(cpu, host + s->offset, src, idx, s->n, s->row);
                CHECK(count_bit_differences(host, want, n_buf) == 0, "cpu backend: row=%d differs", s->row);
                free(host);
            }
            be->free(be, d_src), be->free(be, d_dst), be->free(be, d_idx);
            free(src), free(idx), free(guard), free(want), free(got);
        }
    }
    cpu->destroy(cpu);
}

// ------------------------------------------------------------------ log-softmax top-k

enum { LOGITS_UNIFORM, LOGITS_TIES, LOGITS_ASCENDING, LOGITS_CONSTANT };

typedef struct {
    int N, V, Vp, k, kind;
} TopkCase;

// logits [N,Vp]: the real columns of `kind`, the padding a huge value that must never be read
static float* topk_logits(const TopkCase* s, DType act) {
    float* z = (float*)mallocCheck((size_t)s->N * s->Vp * sizeof(float));
    for (int r = 0; r < s->N; r++)
        for (int j = 0; j < s->Vp; j++) {
            float x;
            if (j >= s->V) x = 1e30f;
            else if (s->kind == LOGITS_TIES) x = (float)(rng_int(33) - 16) * 0.25f;  // 33 values: many ties
            else if (s->kind == LOGITS_ASCENDING) x = -4.0f + 8.0f * (float)j / (float)s->V;  // every column a new best
            else if (s->kind == LOGITS_CONSTANT) x = 1.5f;
            else x = rng_uniform(-6, 6);
            z[(size_t)r * s->Vp + j] = x;
        }
    round_to_act(act, z, (size_t)s->N * s->Vp);
    return z;
}

static const double* sort_logits;  // qsort has no context argument
static int by_logit_then_id(const void* a, const void* b) {
    const int i = *(const int*)a, j = *(const int*)b;
    if (sort_logits[i] != sort_logits[j]) return sort_logits[i] > sort_logits[j] ? -1 : 1;
    return i < j ? -1 : 1;
}

// The CPU top-k against the first k of every column sorted by (log-softmax desc, id asc).
static void test_cpu_topk_matches_sort(void) {
    const TopkCase cases[] = {
        {1, 1, 1, 1, LOGITS_UNIFORM},      {3, 50, 64, 10, LOGITS_TIES},       {5, 1000, 1024, 40, LOGITS_TIES},
        {2, 777, 800, 64, LOGITS_UNIFORM}, {3, 50257, 50304, 10, LOGITS_TIES}, {1, 100, 100, 33, LOGITS_ASCENDING},
        {2, 40, 41, 40, LOGITS_CONSTANT},  {3, 300, 301, 1, LOGITS_TIES},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const TopkCase* s = &cases[c];
        float* z = topk_logits(s, DTYPE_F32);
        float* values = nan_floats((size_t)s->N * s->k);
        int* ids = (int*)mallocCheck((size_t)s->N * s->k * sizeof(int));
        memset(ids, 0xff, (size_t)s->N * s->k * sizeof(int));
        logsoftmax_topk_cpu(values, ids, z, s->N, s->V, s->Vp, s->k);
        double* lsm = (double*)mallocCheck(s->V * sizeof(double));
        int* order = (int*)mallocCheck(s->V * sizeof(int));
        size_t bad_ids = 0;
        double worst = 0;
        for (int r = 0; r < s->N; r++) {
            const float* row = z + (size_t)r * s->Vp;
            double max = -INFINITY, sum = 0;
            for (int j = 0; j < s->V; j++) max = fmax(max, row[j]);
            for (int j = 0; j < s->V; j++) sum += exp((double)row[j] - max);
            for (int j = 0; j < s->V; j++) {
                lsm[j] = (double)row[j] - max - log(sum);
                order[j] = j;
            }
            sort_logits = lsm;
            qsort(order, s->V, sizeof(int), by_logit_then_id);
            for (int q = 0; q < s->k; q++) {
                bad_ids += ids[(size_t)r * s->k + q] != order[q];
                const double e = fabs((double)values[(size_t)r * s->k + q] - lsm[order[q]]);
                worst = isfinite(e) ? fmax(worst, e) : INFINITY;
            }
        }
        CHECK(bad_ids == 0 && worst < TOPK_VALUE_TOL, "N=%d V=%d Vp=%d k=%d kind %d: %zu ids differ, values max err %.3g",
              s->N, s->V, s->Vp, s->k, s->kind, bad_ids, worst);
        free(z), free(values), free(ids), free(lsm), free(order);
    }
}

static const TopkCase cuda_topk_cases[] = {
    {1, 1, 1, 1, LOGITS_UNIFORM},      // a single column
    {3, 5, 8, 5, LOGITS_TIES},         // k = V < 32
    {1, 50, 64, 10, LOGITS_UNIFORM},
    {5, 1000, 1024, 10, LOGITS_TIES},  // ties across warps
    {3, 777, 800, 33, LOGITS_TIES},    // k > 32: two list slots per lane
    {2, 2000, 2001, 64, LOGITS_UNIFORM},
    {1, 3000, 3000, 40, LOGITS_ASCENDING},  // every column is inserted
    {3, 600, 601, 64, LOGITS_CONSTANT},     // all tied: ids 0 .. 63
    {3, 50257, 50304, 10, LOGITS_UNIFORM},  // GPT-2's vocabulary
    {7, 300, 320, 1, LOGITS_TIES},
};

static void topk_vs_cpu(DType act) {
    Backend* be = cuda_backend(act);
    NEED_GPU(be);
    for (size_t c = 0; c < sizeof cuda_topk_cases / sizeof *cuda_topk_cases; c++) {
        const TopkCase* s = &cuda_topk_cases[c];
        if (test_leaves_out((size_t)s->N * s->Vp, "top-k N=%d V=%d Vp=%d k=%d", s->N, s->V, s->Vp, s->k)) continue;
        const size_t n_out = (size_t)s->N * s->k;
        float* z = topk_logits(s, act);
        float* ref_v = nan_floats(n_out);
        int* ref_id = (int*)mallocCheck(n_out * sizeof(int));
        logsoftmax_topk_cpu(ref_v, ref_id, z, s->N, s->V, s->Vp, s->k);
        void* d_z = upload_act(be, z, (size_t)s->N * s->Vp);
        float* d_v = (float*)be->alloc(be, n_out * sizeof(float));
        int* d_id = (int*)be->alloc(be, n_out * sizeof(int));
        float* got_v[2] = {nan_floats(n_out), nan_floats(n_out)};
        int* got_id[2] = {(int*)mallocCheck(n_out * sizeof(int)), (int*)mallocCheck(n_out * sizeof(int))};
        for (int run = 0; run < 2; run++) {
            poison_device(be, d_v, n_out * sizeof(float));
            poison_device(be, d_id, n_out * sizeof(int));
            be->logsoftmax_topk(be, d_v, d_id, d_z, s->N, s->V, s->Vp, s->k);
            be->download(be, got_v[run], d_v, n_out * sizeof(float));
            be->download(be, got_id[run], d_id, n_out * sizeof(int));
        }
        size_t bad_ids = 0;
        double worst = 0;
        for (size_t i = 0; i < n_out; i++) {
            bad_ids += got_id[0][i] != ref_id[i];
            const double e = fabs((double)got_v[0][i] - ref_v[i]);
            worst = isfinite(e) ? fmax(worst, e) : INFINITY;
        }
        CHECK(bad_ids == 0 && worst < TOPK_VALUE_TOL,
              "%s %s N=%d V=%d Vp=%d k=%d kind %d: %zu ids differ from the CPU's, values max err %.3g", CUDA_WHERE,
              act_name(act), s->N, s->V, s->Vp, s->k, s->kind, bad_ids, worst);
        CHECK(count_bit_differences(got_v[0], got_v[1], n_out) == 0 && !memcmp(got_id[0], got_id[1], n_out * sizeof(int)),
              "%s %s V=%d k=%d: two runs differ", CUDA_WHERE, act_name(act), s->V, s->k);
        be->free(be, d_z), be->free(be, d_v), be->free(be, d_id);
        free(z), free(ref_v), free(ref_id), free(got_v[0]), free(got_v[1]), free(got_id[0]), free(got_id[1]);
    }
}

static void test_cuda_topk_fp32(void) { topk_vs_cpu(DTYPE_F32); }
static void test_cuda_topk_bf16(void) { topk_vs_cpu(DTYPE_BF16); }

// ------------------------------------------------------------------ the CPU backend's table, bad shapes

static void test_cpu_backend_table(void) {
    Backend* be = backend_cpu_create();
    const CachedCase s = {2, 3, 5, 9, 48, 2, 0};
    CachedInputs in;
    cached_inputs_make(&in, &s, DTYPE_F32);
    const size_t n_cache = (size_t)s.B * s.Tmax * s.C, n_out = (size_t)s.B * s.Tn * s.C;
    float *out = nan_floats(n_out), *ref = nan_floats(n_out);
    float* k2 = (float*)mallocCheck(n_cache * sizeof(float));
    float* v2 = (float*)mallocCheck(n_cache * sizeof(float));
    memcpy(k2, in.kcache, n_cache * sizeof(float));
    memcpy(v2, in.vcache, n_cache * sizeof(float));
    be->attention_forward_cached(be, out, in.qkv, in.kcache, in.vcache, s.past, s.B, s.Tn, s.Tmax, s.C, s.H);
    attention_forward_cached_cpu(ref, in.qkv, k2, v2, s.past, s.B, s.Tn, s.Tmax, s.C, s.H);
    CHECK(count_bit_differences(out, ref, n_out) == 0 && count_bit_differences(in.kcache, k2, n_cache) == 0 &&
              count_bit_differences(in.vcache, v2, n_cache) == 0,
          "attention_forward_cached differs from attention_forward_cached_cpu");
    const TopkCase t = {3, 70, 72, 7, LOGITS_TIES};
    float* z = topk_logits(&t, DTYPE_F32);
    float *vals = nan_floats(21), *ref_vals = nan_floats(21);
    int ids[21], ref_ids[21];
    be->logsoftmax_topk(be, vals, ids, z, t.N, t.V, t.Vp, t.k);
    logsoftmax_topk_cpu(ref_vals, ref_ids, z, t.N, t.V, t.Vp, t.k);
    CHECK(count_bit_differences(vals, ref_vals, 21) == 0 && !memcmp(ids, ref_ids, sizeof ids),
          "logsoftmax_topk differs from logsoftmax_topk_cpu");
    cached_inputs_free(&in);
    free(out), free(ref), free(k2), free(v2), free(z), free(vals), free(ref_vals);
    be->destroy(be);
}

static void cached_past_too_large(void* arg) {
    float x[1] = {0};
    attention_forward_cached_cpu(x, x, x, x, 7, 1, 2, 8, 4, 1);
}
static void cached_cuda_head_size_136(void* arg) {
    attention_forward_cached_cuda(NULL, NULL, NULL, NULL, 0, 1, 1, 4, 272, 2, DTYPE_BF16);
}
static void topk_cuda_k_65(void* arg) { logsoftmax_topk_cuda(NULL, NULL, NULL, 1, 100, 100, 65, DTYPE_F32); }
static void topk_k_above_v(void* arg) {
    float x[1] = {0};
    int id[1];
    logsoftmax_topk_cpu(x, id, x, 1, 5, 8, 6);
}

static void test_bad_shapes(void) {
    char err[512];
    int rc = run_captured(cached_past_too_large, NULL, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "past=7 + Tn=2 new tokens do not fit the cache of Tmax=8"), "rc %d, stderr: %s", rc,
          err);
    rc = run_captured(topk_k_above_v, NULL, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "k=6 is outside 1..V=5"), "rc %d, stderr: %s", rc, err);
    // the CUDA launchers check the shape before they touch the device (no GPU needed)
    rc = run_captured(cached_cuda_head_size_136, NULL, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "head size C/H = 136 is not supported"), "rc %d, stderr: %s", rc, err);
    rc = run_captured(topk_cuda_k_65, NULL, err, sizeof err);
    CHECK(rc == 1 && strstr(err, "k=65 is not supported"), "rc %d, stderr: %s", rc, err);
}

// ------------------------------------------------------------------ shuffle mode (emulation only)

// The CUDA cases again in a child with the emulator's shuffle mode (tests/harness.h).
static void test_cuda_shuffled(void) {
#ifdef TIPCAP_TEST_GPU
    SKIP("shuffle mode is a feature of the CUDA emulation");
#else
    static char log[1 << 16];
    CHECK(rerun_shuffled(log, sizeof log), "the CUDA cases failed under the emulator's shuffle mode: %s", log);
#endif
}

int main(int argc, char** argv) {
    rng_state = test_seed();
    if (argc > 1 && !strcmp(argv[1], SHUFFLED_CHILD_FLAG)) {
        RUN(test_cuda_cached_fp32);
        RUN(test_cuda_cached_bf16);
        RUN(test_rows_gather);
        RUN(test_cuda_topk_bf16);
    } else {
        RUN(test_cpu_chunked_matches_full);
        RUN(test_cpu_topk_matches_sort);
        RUN(test_cpu_backend_table);
        RUN(test_bad_shapes);
        RUN(test_cuda_cached_fp32);
        RUN(test_cuda_cached_bf16);
        RUN(test_rows_gather);
        RUN(test_cuda_topk_fp32);
        RUN(test_cuda_topk_bf16);
        RUN(test_cuda_shuffled);
    }
    for (int a = 0; a < 2; a++)
        if (gpu[a]) gpu[a]->destroy(gpu[a]);
    return test_summary();
}
