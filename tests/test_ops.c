// Every op of the backend interface (but attention, tested in test_attention.c) on the CUDA
// backend against the CPU reference, in the manner of ggml's test-backend-ops. Built twice:
//   make test      against the CUDA kernels running under the CPU emulation (kernels/emu/)
//   make test-gpu  against real CUDA (TIPCAP_TEST_GPU); without a GPU those cases are skipped.
// For each op, direction and shape: fresh random inputs (from the printed seed), outputs
// poisoned with NaN before the op runs (accumulated outputs start from random values), odd
// sizes (not multiples of the block sizes, T = 1, widths not multiples of 32), the CPU in fp32
// against the CUDA backend with fp32 and with bf16 storage (act inputs are rounded to bf16 for
// every backend, so all see the same numbers), a relative-error bound per precision, and
// determinism: two CUDA runs on the same inputs must agree bit for bit. Under emulation the CUDA
// cases run once more in a child process in the emulator's shuffle mode (fibers resumed in a
// random order at every barrier), which exposes missing barriers and races.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cast.h"
#include "kernels/philox.h"
#include "kernels/random.h"
#include "tests/harness.h"

#ifdef TIPCAP_TEST_GPU
#define CUDA_KIND "cuda"
#else
#define CUDA_KIND "cuda-emu"
#endif

#define TOL_F32 2e-5    // fp32 storage: summation order only
#define TOL_BF16 1.5e-2 // bf16 storage: rounding of inputs, outputs and intermediates to 8 bits

// ------------------------------------------------------------------------------- backends
static Backend* cpu;
static Backend* gpu[2];  // by DType
static int gpu_probed;

static int have_gpu(void) {
    if (!gpu_probed) {
        gpu_probed = 1;
        gpu[DTYPE_F32] = backend_cuda_create(DTYPE_F32);
        gpu[DTYPE_BF16] = gpu[DTYPE_F32] ? backend_cuda_create(DTYPE_BF16) : NULL;
    }
    return gpu[DTYPE_F32] != NULL;
}

// ------------------------------------------------------------------------------- random inputs
typedef struct {
    uint64_t s;
} Rng;
static uint64_t rng_next(Rng* r) {  // splitmix64
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float rng_uniform(Rng* r, float lo, float hi) {
    return lo + (hi - lo) * (float)((double)(rng_next(r) >> 40) / (double)(1ull << 24));
}
static int rng_int(Rng* r, int n) { return (int)(rng_next(r) % (uint64_t)n); }

// fp32 values (e.g. master weights and accumulated gradients) in [-scale, scale)
static float* rand_f32(Rng* r, size_t n, float scale) {
    float* x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = rng_uniform(r, -scale, scale);
    return x;
}
// values for act buffers: rounded to bf16, so that every backend sees exactly the same inputs
static void round_to_bf16(float* x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = bf16_to_float(bf16_from_float(x[i]));
}
static float* rand_act(Rng* r, size_t n, float scale) {
    float* x = rand_f32(r, n, scale);
    round_to_bf16(x, n);
    return x;
}

// ------------------------------------------------------------------------------- device buffers
// Buffers of one run, freed together.
typedef struct {
    Backend* be;
    void* ptr[32];
    int n;
} Pool;
static void* pool_alloc(Pool* p, size_t bytes) {
    if (p->n >= 32) {
        fprintf(stderr, "test_ops: more than 32 buffers in one run\n");
        exit(2);
    }
    return p->ptr[p->n++] = p->be->alloc(p->be, bytes ? bytes : 1);
}
static void pool_free(Pool* p) {
    for (int i = 0; i < p->n; i++) p->be->free(p->be, p->ptr[i]);
    p->n = 0;
}

static void* up_act(Pool* p, const float* x, size_t n) {
    Backend* be = p->be;
    void* d = pool_alloc(p, n * dtype_size(be->act));
    if (be->act == DTYPE_F32) {
        be->upload(be, d, x, n * sizeof(float));
    } else {
        uint16_t* h = malloc((n ? n : 1) * sizeof(uint16_t));
        cast_f32_to_bf16_cpu(h, x, n);
        be->upload(be, d, h, n * sizeof(uint16_t));
        free(h);
    }
    return d;
}
static float* up_f32(Pool* p, const float* x, size_t n) {
    float* d = pool_alloc(p, n * sizeof(float));
    p->be->upload(p->be, d, x, n * sizeof(float));
    return d;
}
static int* up_i32(Pool* p, const int* x, size_t n) {
    int* d = pool_alloc(p, n * sizeof(int));
    p->be->upload(p->be, d, x, n * sizeof(int));
    return d;
}
// an output buffer full of NaN
static void* poison_act(Pool* p, size_t n) {
    float* nan = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    void* d = up_act(p, nan, n);
    free(nan);
    return d;
}
static float* poison_f32(Pool* p, size_t n) {
    float* nan = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) nan[i] = NAN;
    float* d = up_f32(p, nan, n);
    free(nan);
    return d;
}
static float* down_act(Pool* p, const void* d, size_t n) {
    Backend* be = p->be;
    float* x = malloc((n ? n : 1) * sizeof(float));
    if (be->act == DTYPE_F32) {
        be->download(be, x, d, n * sizeof(float));
    } else {
        uint16_t* h = malloc((n ? n : 1) * sizeof(uint16_t));
        be->download(be, h, d, n * sizeof(uint16_t));
        cast_bf16_to_f32_cpu(x, h, n);
        free(h);
    }
    return x;
}
static float* down_f32(Pool* p, const float* d, size_t n) {
    float* x = malloc((n ? n : 1) * sizeof(float));
    p->be->download(p->be, x, d, n * sizeof(float));
    return x;
}

// ------------------------------------------------------------------------------- the driver
#define MAX_OUTPUTS 6
#define MAX_DIMS 8
typedef struct {
    int n;
    const char* name[MAX_OUTPUTS];
    float* v[MAX_OUTPUTS];
    size_t len[MAX_OUTPUTS];
    int f32[MAX_OUTPUTS];           // computed from fp32 inputs alone: the fp32 bound whatever the act type
} Outputs;

static void out_add(Outputs* o, const char* name, float* v, size_t len) {
    o->name[o->n] = name;
    o->v[o->n] = v;
    o->len[o->n] = len;
    o->f32[o->n] = 0;
    o->n++;
}
static void out_add_f32(Outputs* o, const char* name, float* v, size_t len) {
    out_add(o, name, v, len);
    o->f32[o->n - 1] = 1;
}
static void outputs_free(Outputs* o) {
    for (int i = 0; i < o->n; i++) free(o->v[i]);
    o->n = 0;
}

// Runs one op on one backend for the shape `dims`, with inputs drawn from `seed`; the outputs
// come back as fp32 host arrays.
typedef void (*OpRun)(Backend* be, const int* dims, uint64_t seed, Outputs* out);

static const char* act_name(DType t) { return t == DTYPE_BF16 ? "bf16" : "fp32"; }

static void format_dims(char* buf, size_t cap, const int* dims) {
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < MAX_DIMS && dims[i] >= 0 && len + 16 < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%d", i ? "," : "(", dims[i]);
    snprintf(buf + len, cap - len, ")");
}

static uint64_t case_counter;

// Shapes end with a row starting with -1; unused dims are -1.
static void compare_with_cpu(const char* op, OpRun run, const int (*shapes)[MAX_DIMS]) {
    for (int s = 0; shapes[s][0] >= 0; s++) {
        char dims[128];
        format_dims(dims, sizeof dims, shapes[s]);
        uint64_t seed = test_seed() * 1000003ull + ++case_counter;
        Outputs ref = {0};
        run(cpu, shapes[s], seed, &ref);
        size_t largest = 0;  // the largest output stands for the size of the shape
        for (int i = 0; i < ref.n; i++) largest = ref.len[i] > largest ? ref.len[i] : largest;
        if (test_leaves_out(largest, "%s %s", op, dims)) {
            outputs_free(&ref);
            continue;
        }
        for (int a = DTYPE_F32; a <= DTYPE_BF16; a++) {
            Outputs got = {0}, again = {0};
            run(gpu[a], shapes[s], seed, &got);
            run(gpu[a], shapes[s], seed, &again);
            for (int i = 0; i < ref.n; i++) {
                double bound = (a == DTYPE_BF16 && !ref.f32[i] ? TOL_BF16 : TOL_F32);
                double err = rel_err(got.v[i], ref.v[i], ref.len[i]);
                CHECK(err <= bound, "%s %s %s: %s rel err %.3g vs cpu (bound %.3g)", op, dims, act_name((DType)a),
                      ref.name[i], err, bound);
                CHECK(memcmp(got.v[i], again.v[i], ref.len[i] * sizeof(float)) == 0,
                      "%s %s %s: %s differs between two runs (not deterministic)", op, dims, act_name((DType)a),
                      ref.name[i]);
            }
            outputs_free(&got);
            outputs_free(&again);
        }
        outputs_free(&ref);
    }
}

// ------------------------------------------------------------------------------- backends themselves
static void test_backend_names(void) {
    NEED_GPU(have_gpu());
    CHECK(!strcmp(cpu->name, "cpu") && cpu->act == DTYPE_F32, "cpu backend: %s", cpu->name);
    for (int a = DTYPE_F32; a <= DTYPE_BF16; a++)
        CHECK(!strcmp(gpu[a]->name, CUDA_KIND) && gpu[a]->act == (DType)a, "cuda backend named %s, act %d",
              gpu[a]->name, (int)gpu[a]->act);
    // alloc gives zeros; zero, copy, upload and download round-trip
    Backend* be = gpu[DTYPE_F32];
    float host[37], back[37];
    for (int i = 0; i < 37; i++) host[i] = (float)i - 11.5f;
    float* d = be->alloc(be, sizeof host);
    float* e = be->alloc(be, sizeof host);
    be->download(be, back, d, sizeof back);
    int zeros = 1;
    for (int i = 0; i < 37; i++) zeros &= back[i] == 0;
    CHECK(zeros, "alloc is not zero-filled");
    be->upload(be, d, host, sizeof host);
    be->copy(be, e, d, sizeof host);
    be->download(be, back, e, sizeof back);
    CHECK(memcmp(host, back, sizeof host) == 0, "upload/copy/download do not round-trip");
    be->zero(be, e, 10 * sizeof(float));
    be->sync(be);
    be->download(be, back, e, sizeof back);
    CHECK(back[9] == 0 && back[10] == host[10], "zero cleared the wrong range");
    be->free(be, d);
    be->free(be, e);
}

// ------------------------------------------------------------------------------- cast
static void test_cast(void) {
    NEED_GPU(have_gpu());
    Rng r = {test_seed() + 17};
    size_t n = 1031;
    float* x = rand_f32(&r, n, 100);
    x[0] = 0;
    x[1] = -0.0f;
    x[2] = 1.0f + 1.0f / 256;  // halfway between two bf16 values: rounds to even
    x[3] = 1.0f + 3.0f / 256;
    x[4] = INFINITY;
    x[5] = 3.4e38f;            // rounds up to infinity
    x[6] = 1e-40f;             // subnormal
    uint16_t* want = malloc(n * sizeof(uint16_t));
    cast_f32_to_bf16_cpu(want, x, n);
    CHECK(want[2] == 0x3f80 && want[3] == 0x3f82, "round to nearest even: %04x %04x", want[2], want[3]);
    Backend* be = gpu[DTYPE_BF16];
    float* dx = be->alloc(be, n * sizeof(float));
    void* dact = be->alloc(be, n * 2);
    float* dback = be->alloc(be, n * sizeof(float));
    be->upload(be, dx, x, n * sizeof(float));
    be->cast_to_act(be, dact, dx, n);
    be->cast_to_f32(be, dback, dact, n);
    uint16_t* got = malloc(n * sizeof(uint16_t));
    float* back = malloc(n * sizeof(float));
    be->download(be, got, dact, n * 2);
    be->download(be, back, dback, n * sizeof(float));
    size_t bad = 0, bad_back = 0;
    for (size_t i = 0; i < n; i++) {
        bad += got[i] != want[i];
        bad_back += memcmp(&back[i], &(float){bf16_to_float(want[i])}, 4) != 0;
    }
    CHECK(bad == 0, "%zu of %zu fp32 -> bf16 conversions differ from round-to-nearest-even", bad, n);
    CHECK(bad_back == 0, "%zu of %zu bf16 -> fp32 conversions differ", bad_back, n);
    // fp32 act: a copy
    Backend* bf = gpu[DTYPE_F32];
    float* d32 = bf->alloc(bf, n * sizeof(float));
    bf->cast_to_act(bf, d32, dx, n);
    bf->download(bf, back, d32, n * sizeof(float));
    CHECK(memcmp(back, x, n * sizeof(float)) == 0, "fp32 cast_to_act is not a copy");
    be->free(be, dx);
    be->free(be, dact);
    be->free(be, dback);
    bf->free(bf, d32);
    free(x); free(want); free(got); free(back);
}

// ------------------------------------------------------------------------------- embedding
// dims: B, T, K, C, V, P, prefix_T
static void make_tokens(Rng* r, int* tokens, int n, int V) {
    for (int i = 0; i < n; i++) tokens[i] = rng_int(r, V + 1) - 1;  // -1 padding
    if (n >= 2) tokens[1] = tokens[0] = V - 1;                     // a repeated token
}
static void make_positions(Rng* r, int* pos, int T, int P) {
    for (int t = 0; t < T; t++) pos[t] = rng_int(r, P);
    if (T >= 3) pos[2] = pos[0];  // a repeated position
}

static void run_embedding_forward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int B = d[0], T = d[1], K = d[2], C = d[3], V = d[4], P = d[5], pT = d[6], L = T - K;
    Rng r = {seed};
    Pool p = {.be = be};
    int* tokens = malloc(sizeof(int) * (size_t)(B * L + 1));
    int* pos = malloc(sizeof(int) * (size_t)T);
    make_tokens(&r, tokens, B * L, V);
    make_positions(&r, pos, T, P);
    float* prefix = rand_act(&r, (size_t)B * pT * C, 1);
    float* table = rand_act(&r, (size_t)V * C, 1);
    float* pos_table = rand_act(&r, (size_t)P * C, 1);
    void* o = poison_act(&p, (size_t)B * T * C);
    be->embedding_forward(be, o, K ? up_act(&p, prefix, (size_t)B * pT * C) : NULL, pT,
                          L ? up_i32(&p, tokens, (size_t)B * L) : NULL, L ? up_act(&p, table, (size_t)V * C) : NULL,
                          up_act(&p, pos_table, (size_t)P * C), up_i32(&p, pos, T), B, T, K, C);
    out_add(out, "out", down_act(&p, o, (size_t)B * T * C), (size_t)B * T * C);
    pool_free(&p);
    free(tokens); free(pos); free(prefix); free(table); free(pos_table);
}

static void run_embedding_backward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int B = d[0], T = d[1], K = d[2], C = d[3], V = d[4], P = d[5], pT = d[6], L = T - K;
    Rng r = {seed};
    Pool p = {.be = be};
    int* tokens = malloc(sizeof(int) * (size_t)(B * L + 1));
    int* pos = malloc(sizeof(int) * (size_t)T);
    make_tokens(&r, tokens, B * L, V);
    make_positions(&r, pos, T, P);
    float* dout = rand_act(&r, (size_t)B * T * C, 1);
    float* dprefix0 = rand_act(&r, (size_t)B * pT * C, 1);  // rows t >= K must stay as they are
    float* dtable0 = rand_f32(&r, (size_t)V * C, 1);
    float* dpos0 = rand_f32(&r, (size_t)P * C, 1);
    void* dprefix = K ? up_act(&p, dprefix0, (size_t)B * pT * C) : NULL;
    float* dtable = up_f32(&p, dtable0, (size_t)V * C);
    float* dpos = up_f32(&p, dpos0, (size_t)P * C);
    be->embedding_backward(be, dprefix, pT, dtable, dpos, up_act(&p, dout, (size_t)B * T * C),
                           L ? up_i32(&p, tokens, (size_t)B * L) : NULL, tokens, up_i32(&p, pos, T), pos, B, T, K, C,
                           V, P);
    if (K) out_add(out, "dprefix", down_act(&p, dprefix, (size_t)B * pT * C), (size_t)B * pT * C);
    out_add(out, "dtable", down_f32(&p, dtable, (size_t)V * C), (size_t)V * C);
    out_add(out, "dpos_table", down_f32(&p, dpos, (size_t)P * C), (size_t)P * C);
    pool_free(&p);
    free(tokens); free(pos); free(dout); free(dprefix0); free(dtable0); free(dpos0);
}

static const int embedding_shapes[][MAX_DIMS] = {
    {2, 7, 3, 67, 11, 9, 5, -1},   // prefix_T > K: only the first K prefix rows are used
    {3, 1, 0, 33, 5, 4, 0, -1},    // T = 1, no prefix
    {2, 4, 4, 40, 1, 6, 4, -1},    // all prefix, no tokens
    {4, 9, 1, 300, 13, 9, 1, -1},  // C above the block size
    {-1},
};
static void test_embedding_forward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("embedding_forward", run_embedding_forward, embedding_shapes);
}
static void test_embedding_backward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("embedding_backward", run_embedding_backward, embedding_shapes);
}

// ------------------------------------------------------------------------------- bag mean
// dims: n_bags, C, V; bag sizes cycle 3, 1, 0, 2, 5
static int make_bags(Rng* r, int n_bags, int V, int* offsets, int* ids) {
    static const int sizes[] = {3, 1, 0, 2, 5};
    offsets[0] = 0;
    for (int i = 0; i < n_bags; i++) offsets[i + 1] = offsets[i] + sizes[i % 5];
    for (int j = 0; j < offsets[n_bags]; j++) ids[j] = rng_int(r, V);
    if (offsets[n_bags] >= 2) ids[1] = ids[0];
    return offsets[n_bags];
}

static void run_bag_mean_forward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int n_bags = d[0], C = d[1], V = d[2];
    Rng r = {seed};
    Pool p = {.be = be};
    int* offsets = malloc(sizeof(int) * (size_t)(n_bags + 1));
    int* ids = malloc(sizeof(int) * (size_t)(5 * n_bags + 1));
    int n_ids = make_bags(&r, n_bags, V, offsets, ids);
    float* table = rand_act(&r, (size_t)V * C, 1);
    void* o = poison_act(&p, (size_t)n_bags * C);
    be->bag_mean_forward(be, o, up_act(&p, table, (size_t)V * C), up_i32(&p, ids, (size_t)n_ids + 1),
                         up_i32(&p, offsets, (size_t)n_bags + 1), n_bags, C);
    out_add(out, "out", down_act(&p, o, (size_t)n_bags * C), (size_t)n_bags * C);
    pool_free(&p);
    free(offsets); free(ids); free(table);
}

static void run_bag_mean_backward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int n_bags = d[0], C = d[1], V = d[2];
    Rng r = {seed};
    Pool p = {.be = be};
    int* offsets = malloc(sizeof(int) * (size_t)(n_bags + 1));
    int* ids = malloc(sizeof(int) * (size_t)(5 * n_bags + 1));
    make_bags(&r, n_bags, V, offsets, ids);
    float* dout = rand_act(&r, (size_t)n_bags * C, 1);
    float* dtable0 = rand_f32(&r, (size_t)V * C, 1);
    float* dtable = up_f32(&p, dtable0, (size_t)V * C);
    be->bag_mean_backward(be, dtable, up_act(&p, dout, (size_t)n_bags * C), ids, offsets, n_bags, C, V);
    out_add(out, "dtable", down_f32(&p, dtable, (size_t)V * C), (size_t)V * C);
    pool_free(&p);
    free(offsets); free(ids); free(dout); free(dtable0);
}

static const int bag_shapes[][MAX_DIMS] = {
    {7, 67, 9, -1},
    {1, 1, 3, -1},
    {12, 260, 20, -1},
    {-1},
};
static void test_bag_mean_forward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("bag_mean_forward", run_bag_mean_forward, bag_shapes);
}
static void test_bag_mean_backward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("bag_mean_backward", run_bag_mean_backward, bag_shapes);
}

// ------------------------------------------------------------------------------- layer norm
// dims: N, C
static void run_layernorm_forward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int N = d[0], C = d[1];
    Rng r = {seed};
    Pool p = {.be = be};
    float* x = rand_f32(&r, (size_t)N * C, 3);
    for (int c = 0; c < C; c++) x[c] += 5;  // a row with a large mean
    round_to_bf16(x, (size_t)N * C);
    float* w = rand_act(&r, C, 1);
    float* b = rand_act(&r, C, 1);
    void* o = poison_act(&p, (size_t)N * C);
    float* mean = poison_f32(&p, N);
    float* rstd = poison_f32(&p, N);
    be->layernorm_forward(be, o, mean, rstd, up_act(&p, x, (size_t)N * C), up_act(&p, w, C), up_act(&p, b, C), N, C);
    out_add(out, "out", down_act(&p, o, (size_t)N * C), (size_t)N * C);
    out_add(out, "mean", down_f32(&p, mean, N), N);
    out_add(out, "rstd", down_f32(&p, rstd, N), N);
    pool_free(&p);
    free(x); free(w); free(b);
}

static void run_residual_layernorm_forward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int N = d[0], C = d[1];
    Rng r = {seed};
    Pool p = {.be = be};
    // Multiples of 1/64 below 2 in magnitude: their sums are exact in bf16 too, so every backend
    // normalises the same residual.
    float* a = malloc(sizeof(float) * (size_t)N * C);
    float* b = malloc(sizeof(float) * (size_t)N * C);
    for (size_t i = 0; i < (size_t)N * C; i++) {
        a[i] = (float)(rng_int(&r, 255) - 127) / 64.0f;
        b[i] = (float)(rng_int(&r, 255) - 127) / 64.0f;
    }
    float* w = rand_act(&r, C, 1);
    float* bias = rand_act(&r, C, 1);
    void* res = poison_act(&p, (size_t)N * C);
    void* o = poison_act(&p, (size_t)N * C);
    float* mean = poison_f32(&p, N);
    float* rstd = poison_f32(&p, N);
    be->residual_layernorm_forward(be, res, o, mean, rstd, up_act(&p, a, (size_t)N * C), up_act(&p, b, (size_t)N * C),
                                   up_act(&p, w, C), up_act(&p, bias, C), N, C);
    out_add(out, "residual", down_act(&p, res, (size_t)N * C), (size_t)N * C);
    out_add(out, "out", down_act(&p, o, (size_t)N * C), (size_t)N * C);
    out_add(out, "mean", down_f32(&p, mean, N), N);
    out_add(out, "rstd", down_f32(&p, rstd, N), N);
    pool_free(&p);
    free(a); free(b); free(w); free(bias);
}

// dims: N, C, with_param_grads
static void run_layernorm_backward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int N = d[0], C = d[1], param_grads = d[2];
    Rng r = {seed};
    Pool p = {.be = be};
    float* x = rand_act(&r, (size_t)N * C, 3);
    float* w = rand_act(&r, C, 1);
    float* dout = rand_act(&r, (size_t)N * C, 1);
    float* dinp0 = rand_act(&r, (size_t)N * C, 1);
    float* dw0 = rand_f32(&r, C, 1);
    float* db0 = rand_f32(&r, C, 1);
    // the statistics of x, from the CPU in double, identical for every backend
    float* mean = malloc(sizeof(float) * N);
    float* rstd = malloc(sizeof(float) * N);
    for (int n = 0; n < N; n++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[(size_t)n * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[(size_t)n * C + c] - m) * (x[(size_t)n * C + c] - m);
        mean[n] = (float)m;
        rstd[n] = (float)(1 / sqrt(v / C + 1e-5));
    }
    void* dinp = up_act(&p, dinp0, (size_t)N * C);
    float* dw = param_grads ? up_f32(&p, dw0, C) : NULL;
    float* db = param_grads ? up_f32(&p, db0, C) : NULL;
    be->layernorm_backward(be, dinp, dw, db, up_act(&p, dout, (size_t)N * C), up_act(&p, x, (size_t)N * C),
                           up_act(&p, w, C), up_f32(&p, mean, N), up_f32(&p, rstd, N), N, C);
    out_add(out, "dinp", down_act(&p, dinp, (size_t)N * C), (size_t)N * C);
    if (param_grads) {
        out_add(out, "dweight", down_f32(&p, dw, C), C);
        out_add(out, "dbias", down_f32(&p, db, C), C);
    }
    pool_free(&p);
    free(x); free(w); free(dout); free(dinp0); free(dw0); free(db0); free(mean); free(rstd);
}

static const int layernorm_shapes[][MAX_DIMS] = {
    {37, 67, 1, -1},
    {1, 32, 1, -1},
    {9, 768, 1, -1},
    {300, 40, 1, -1},  // several row chunks of the column sums
    {5, 3, 0, -1},     // frozen: no parameter gradients
    {-1},
};
static void test_layernorm_forward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("layernorm_forward", run_layernorm_forward, layernorm_shapes);
}
static void test_residual_layernorm_forward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("residual_layernorm_forward", run_residual_layernorm_forward, layernorm_shapes);
}
static void test_layernorm_backward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("layernorm_backward", run_layernorm_backward, layernorm_shapes);
}

// ------------------------------------------------------------------------------- matmul
// dims: N, C, OC, bias, gelu
static void run_matmul_forward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int N = d[0], C = d[1], OC = d[2], has_bias = d[3], gelu = d[4];
    Rng r = {seed};
    Pool p = {.be = be};
    float* inp = rand_act(&r, (size_t)N * C, 1);
    float* w = rand_act(&r, (size_t)OC * C, 0.3f);
    float* bias = rand_act(&r, OC, 1);
    void* o = poison_act(&p, (size_t)N * OC);
    void* pre = gelu ? poison_act(&p, (size_t)N * OC) : NULL;
    be->matmul_forward(be, o, pre, up_act(&p, inp, (size_t)N * C), up_act(&p, w, (size_t)OC * C),
                       has_bias ? up_act(&p, bias, OC) : NULL, N, C, OC);
    out_add(out, "out", down_act(&p, o, (size_t)N * OC), (size_t)N * OC);
    if (gelu) out_add(out, "gelu_pre", down_act(&p, pre, (size_t)N * OC), (size_t)N * OC);
    pool_free(&p);
    free(inp); free(w); free(bias);
}

// dims: N, C, OC, dbias, gelu, dinp, dweight
static void run_matmul_backward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int N = d[0], C = d[1], OC = d[2], has_dbias = d[3], gelu = d[4], has_dinp = d[5], has_dweight = d[6];
    Rng r = {seed};
    Pool p = {.be = be};
    float* inp = rand_act(&r, (size_t)N * C, 1);
    float* w = rand_act(&r, (size_t)OC * C, 0.3f);
    float* dout = rand_act(&r, (size_t)N * OC, 1);
    float* pre = rand_act(&r, (size_t)N * OC, 2);
    float* dw0 = rand_f32(&r, (size_t)OC * C, 1);
    float* db0 = rand_f32(&r, OC, 1);
    void* dinp = has_dinp ? poison_act(&p, (size_t)N * C) : NULL;
    float* dw = has_dweight ? up_f32(&p, dw0, (size_t)OC * C) : NULL;
    float* db = has_dbias ? up_f32(&p, db0, OC) : NULL;
    void* ddout = up_act(&p, dout, (size_t)N * OC);
    // with GELU the scratch aliases dout, as the model uses it
    be->matmul_backward(be, dinp, dw, db, ddout, gelu ? up_act(&p, pre, (size_t)N * OC) : NULL, gelu ? ddout : NULL,
                        up_act(&p, inp, (size_t)N * C), up_act(&p, w, (size_t)OC * C), N, C, OC);
    if (has_dinp) out_add(out, "dinp", down_act(&p, dinp, (size_t)N * C), (size_t)N * C);
    if (has_dweight) out_add(out, "dweight", down_f32(&p, dw, (size_t)OC * C), (size_t)OC * C);
    if (has_dbias) out_add(out, "dbias", down_f32(&p, db, OC), OC);
    if (gelu) out_add(out, "scratch", down_act(&p, ddout, (size_t)N * OC), (size_t)N * OC);
    pool_free(&p);
    free(inp); free(w); free(dout); free(pre); free(dw0); free(db0);
}

static const int matmul_forward_shapes[][MAX_DIMS] = {
    {13, 67, 45, 1, 0, -1},
    {13, 67, 48, 1, 1, -1},   // GELU with OC % 8 == 0: the cuBLASLt GELU_AUX_BIAS epilogue
    {13, 67, 45, 1, 1, -1},   // GELU otherwise: bias epilogue, then the GELU kernel
    {1, 32, 16, 0, 0, -1},    // one row, no bias
    {7, 24, 40, 0, 1, -1},    // GELU_AUX without bias
    {300, 40, 24, 1, 0, -1},
    {-1},
};
static const int matmul_backward_shapes[][MAX_DIMS] = {
    {13, 67, 45, 1, 0, 1, 1, -1},
    {13, 67, 48, 1, 1, 1, 1, -1},
    {1, 32, 16, 1, 0, 1, 1, -1},
    {300, 40, 24, 1, 1, 1, 1, -1},  // several row chunks of the bias gradient
    {9, 33, 17, 0, 0, 0, 1, -1},    // no dinp, no dbias (the first layer, a bias-free matmul)
    {9, 33, 17, 1, 1, 1, 0, -1},    // a frozen weight: no dweight
    {-1},
};
static void test_matmul_forward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("matmul_forward", run_matmul_forward, matmul_forward_shapes);
}
static void test_matmul_backward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("matmul_backward", run_matmul_backward, matmul_backward_shapes);
}

// ------------------------------------------------------------------------------- elementwise
// dims: n
static void run_gelu_forward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    size_t n = (size_t)d[0];
    Rng r = {seed};
    Pool p = {.be = be};
    float* x = rand_act(&r, n, 5);
    void* o = poison_act(&p, n);
    be->gelu_forward(be, o, up_act(&p, x, n), n);
    out_add(out, "out", down_act(&p, o, n), n);
    pool_free(&p);
    free(x);
}
static void run_gelu_backward(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    size_t n = (size_t)d[0];
    Rng r = {seed};
    Pool p = {.be = be};
    float* x = rand_act(&r, n, 5);
    float* dout = rand_act(&r, n, 1);
    void* dinp = poison_act(&p, n);
    be->gelu_backward(be, dinp, up_act(&p, x, n), up_act(&p, dout, n), n);
    out_add(out, "dinp", down_act(&p, dinp, n), n);
    pool_free(&p);
    free(x); free(dout);
}
static void run_add(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    size_t n = (size_t)d[0];
    Rng r = {seed};
    Pool p = {.be = be};
    float* a = rand_act(&r, n, 1);
    float* b = rand_act(&r, n, 1);
    void* o = poison_act(&p, n);
    be->add(be, o, up_act(&p, a, n), up_act(&p, b, n), n);
    out_add(out, "out", down_act(&p, o, n), n);
    pool_free(&p);
    free(a); free(b);
}
static const int elementwise_shapes[][MAX_DIMS] = {{1, -1}, {1001, -1}, {70001, -1}, {-1}};
static void test_gelu_forward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("gelu_forward", run_gelu_forward, elementwise_shapes);
}
static void test_gelu_backward(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("gelu_backward", run_gelu_backward, elementwise_shapes);
}
static void test_add(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("add", run_add, elementwise_shapes);
}

// ------------------------------------------------------------------------------- cross-entropy
// dims: N, V, Vp, label smoothing (per mille), backward
static void run_crossentropy(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int N = d[0], V = d[1], Vp = d[2], backward = d[4];
    float eps = (float)d[3] / 1000.0f, scale = backward ? 1.0f / (float)N : 0.0f;
    Rng r = {seed};
    Pool p = {.be = be};
    float* z = rand_act(&r, (size_t)N * Vp, 6);
    for (int n = 0; n < N; n++)
        for (int j = V; j < Vp; j++) z[(size_t)n * Vp + j] = NAN;  // padded columns: never read
    int* targets = malloc(sizeof(int) * (size_t)N);
    for (int n = 0; n < N; n++) targets[n] = rng_int(&r, V);
    targets[0] = -1;  // ignored
    if (N > 2) targets[N - 1] = V - 1;
    float* losses = poison_f32(&p, N);
    void* logits = up_act(&p, z, (size_t)N * Vp);
    be->crossentropy_forward_backward(be, losses, logits, up_i32(&p, targets, N), targets, N, V, Vp, eps, scale);
    out_add(out, "losses", down_f32(&p, losses, N), N);
    float* g = down_act(&p, logits, (size_t)N * Vp);
    if (backward) {
        // exact zeros on the padded columns and on the ignored row, on every backend
        size_t nonzero = 0;
        for (int n = 0; n < N; n++)
            for (int j = targets[n] < 0 ? 0 : V; j < Vp; j++) nonzero += g[(size_t)n * Vp + j] != 0.0f;
        CHECK(nonzero == 0, "%s: %zu gradients on padded columns or ignored rows are not 0", be->name, nonzero);
        out_add(out, "dlogits", g, (size_t)N * Vp);
    } else {  // the logits must be untouched: compare the real columns (the padded ones hold NaN)
        float* real = malloc(sizeof(float) * (size_t)N * V);
        for (int n = 0; n < N; n++) memcpy(real + (size_t)n * V, g + (size_t)n * Vp, sizeof(float) * V);
        out_add(out, "logits (untouched)", real, (size_t)N * V);
        free(g);
    }
    pool_free(&p);
    free(z); free(targets);
}
static const int crossentropy_shapes[][MAX_DIMS] = {
    {7, 1000, 1024, 100, 1, -1},
    {5, 37, 40, 0, 1, -1},
    {3, 300, 300, 0, 0, -1},  // forward only
    {1, 5, 8, 50, 1, -1},     // the only row is ignored
    {4, 3000, 3008, 100, 1, -1},
    {-1},
};
static void test_crossentropy(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("crossentropy_forward_backward", run_crossentropy, crossentropy_shapes);
}

// A target outside [-1, V) stops every backend with the row named, before the device reads it:
// one in [V, Vp) would read a padding column, one >= Vp out of bounds.
typedef struct {
    Backend* be;
    int bad_target;
} BadTarget;
static void crossentropy_with_bad_target(void* arg) {
    const BadTarget* a = arg;
    enum { N = 4, V = 37, Vp = 40 };
    Rng r = {11};
    Pool p = {.be = a->be};
    float* z = rand_act(&r, (size_t)N * Vp, 1);
    int targets[N] = {0, 5, a->bad_target, 36};
    a->be->crossentropy_forward_backward(a->be, poison_f32(&p, N), up_act(&p, z, (size_t)N * Vp),
                                         up_i32(&p, targets, N), targets, N, V, Vp, 0.0f, 1.0f);
    exit(0);
}
static void test_crossentropy_bad_targets(void) {
    NEED_GPU(have_gpu());
    const int bad[] = {37, 39, 40, 100000, -2};
    Backend* backends[] = {cpu, gpu[DTYPE_F32], gpu[DTYPE_BF16]};
    for (size_t b = 0; b < 3; b++)
        for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
            BadTarget arg = {backends[b], bad[k]};
            char err[1024], want[96];
            int status = run_captured(crossentropy_with_bad_target, &arg, err, sizeof err);
            snprintf(want, sizeof want, "targets[2] = %d outside [-1, 37)", bad[k]);
            CHECK(status == 1 && strstr(err, want), "%s (%s), target %d: status %d, stderr: %s", backends[b]->name,
                  b == 2 ? "bf16" : "fp32", bad[k], status, err);
        }
}

// ------------------------------------------------------------------------------- optimiser
// dims: n, with act copy, t
static void run_adamw(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    size_t n = (size_t)d[0];
    int with_act = d[1], t = d[2];
    Rng r = {seed};
    Pool p = {.be = be};
    float* params = rand_f32(&r, n, 1);
    float* grads = rand_f32(&r, n, 1);
    float* m0 = rand_f32(&r, n, 0.1f);
    float* v0 = rand_f32(&r, n, 0.1f);
    for (size_t i = 0; i < n; i++) v0[i] = fabsf(v0[i]);
    float* dp = up_f32(&p, params, n);
    float* dm = up_f32(&p, m0, n);
    float* dv = up_f32(&p, v0, n);
    void* act = with_act ? poison_act(&p, n) : NULL;
    be->adamw_update(be, dp, act, up_f32(&p, grads, n), dm, dv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.7f, t);
    out_add_f32(out, "params", down_f32(&p, dp, n), n);
    out_add_f32(out, "m", down_f32(&p, dm, n), n);
    out_add_f32(out, "v", down_f32(&p, dv, n), n);
    if (with_act) out_add(out, "params_act", down_act(&p, act, n), n);
    pool_free(&p);
    free(params); free(grads); free(m0); free(v0);
}
static const int adamw_shapes[][MAX_DIMS] = {{1003, 1, 1, -1}, {1, 0, 7, -1}, {70001, 1, 3, -1}, {-1}};
static void test_adamw(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("adamw_update", run_adamw, adamw_shapes);
}

// dims: n
static void run_sum_squares_scale(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    size_t n = (size_t)d[0];
    Rng r = {seed};
    Pool p = {.be = be};
    float* x = rand_f32(&r, n, 1);
    float* dx = up_f32(&p, x, n);
    double s = be->sum_squares(be, dx, n);
    float* sum = malloc(sizeof(float));
    *sum = (float)s;
    be->scale_f32(be, dx, 0.37f, n);
    out_add_f32(out, "sum_squares", sum, 1);
    out_add_f32(out, "scaled", down_f32(&p, dx, n), n);
    pool_free(&p);
    free(x);
}
static const int sum_squares_shapes[][MAX_DIMS] = {{1, -1}, {1001, -1}, {300007, -1}, {-1}};
static void test_sum_squares_and_scale(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("sum_squares/scale_f32", run_sum_squares_scale, sum_squares_shapes);
}

// ------------------------------------------------------------------------------- Gaussian mapping
// dims: B, D, with dt (all fp32 whatever the act type)
static void run_gap_sample(Backend* be, const int* d, uint64_t seed, Outputs* out) {
    int B = d[0], D = d[1], with_dt = d[2];
    Rng r = {seed};
    Pool p = {.be = be};
    float* t = rand_f32(&r, (size_t)B * D, 1);
    float* mu = rand_f32(&r, D, 0.2f);
    float* L = rand_f32(&r, (size_t)D * D, 0.1f);
    float* dx = rand_f32(&r, (size_t)B * D, 1);
    float* dmu0 = rand_f32(&r, D, 1);
    float* dL0 = rand_f32(&r, (size_t)D * D, 1);
    float* x = poison_f32(&p, (size_t)B * D);
    float* z = poison_f32(&p, (size_t)B * D);
    float* norm = poison_f32(&p, B);
    be->gap_sample_forward(be, x, z, norm, up_f32(&p, t, (size_t)B * D), up_f32(&p, mu, D),
                           up_f32(&p, L, (size_t)D * D), B, D, seed % 1000, 3, 11);
    float* dt = with_dt ? poison_f32(&p, (size_t)B * D) : NULL;
    float* dmu = up_f32(&p, dmu0, D);
    float* dLd = up_f32(&p, dL0, (size_t)D * D);
    be->gap_sample_backward(be, dt, dmu, dLd, up_f32(&p, dx, (size_t)B * D), x, z, norm, B, D);
    out_add_f32(out, "x", down_f32(&p, x, (size_t)B * D), (size_t)B * D);
    out_add_f32(out, "z", down_f32(&p, z, (size_t)B * D), (size_t)B * D);
    out_add_f32(out, "norm", down_f32(&p, norm, B), B);
    if (with_dt) out_add_f32(out, "dt", down_f32(&p, dt, (size_t)B * D), (size_t)B * D);
    out_add_f32(out, "dmu", down_f32(&p, dmu, D), D);
    out_add_f32(out, "dL", down_f32(&p, dLd, (size_t)D * D), (size_t)D * D);
    pool_free(&p);
    free(t); free(mu); free(L); free(dx); free(dmu0); free(dL0);
}
static const int gap_shapes[][MAX_DIMS] = {{3, 37, 1, -1}, {1, 64, 0, -1}, {70, 100, 1, -1}, {-1}};
static void test_gap_sample(void) {
    NEED_GPU(have_gpu());
    compare_with_cpu("gap_sample", run_gap_sample, gap_shapes);
}

// ------------------------------------------------------------------------------- Philox
// Known answers of Philox4x32-10 from Random123's kat_vectors (counter, key -> output).
static void test_philox_known_answers(void) {
    static const uint32_t kat[3][10] = {
        {0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x00000000, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c,
         0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
         0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09, 0x94fdcceb, 0x5001e420,
         0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        Philox4x32 ctr = {{kat[k][0], kat[k][1], kat[k][2], kat[k][3]}};
        Philox4x32 got = philox4x32_10(ctr, kat[k][4], kat[k][5]);
        CHECK(got.v[0] == kat[k][6] && got.v[1] == kat[k][7] && got.v[2] == kat[k][8] && got.v[3] == kat[k][9],
              "vector %d: %08x %08x %08x %08x, want %08x %08x %08x %08x", k, got.v[0], got.v[1], got.v[2], got.v[3],
              kat[k][6], kat[k][7], kat[k][8], kat[k][9]);
    }
    // the normals: finite, mean ~0 and variance ~1 over 200k draws (bounds at ~10 sigma)
    size_t n = 200000;
    float* x = malloc(n * sizeof(float));
    random_normal_cpu(x, n, test_seed(), 7, 0);
    double s = 0, s2 = 0;
    int finite = 1;
    for (size_t i = 0; i < n; i++) {
        finite &= isfinite(x[i]);
        s += x[i];
        s2 += (double)x[i] * x[i];
    }
    CHECK(finite, "a normal is not finite");
    CHECK(fabs(s / n) < 0.025 && fabs(s2 / n - 1) < 0.035, "mean %.4f variance %.4f", s / n, s2 / n);
    free(x);
}

// CPU and CUDA draw the same normals for the same (seed, stream, offset).
static void test_random_normal(void) {
    NEED_GPU(have_gpu());
    Backend* be = gpu[DTYPE_F32];
    size_t n = 4099;
    uint64_t seed = test_seed(), offset = 123457;
    float* want = malloc(n * sizeof(float));
    float* got = malloc(n * sizeof(float));
    random_normal_cpu(want, n, seed, 2, offset);
    float* d = be->alloc(be, n * sizeof(float));
    random_normal_cuda(d, n, seed, 2, offset);
    be->download(be, got, d, n * sizeof(float));
    // a slice drawn on its own equals the same slice of the longer draw
    float slice[100];
    random_normal_cuda(d, 100, seed, 2, offset + 50);
    be->download(be, slice, d, sizeof slice);
    CHECK(memcmp(slice, got + 50, sizeof slice) == 0, "an offset slice differs from the stream");
    size_t differ = 0, far = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &want[i], 4);
        memcpy(&b, &got[i], 4);
        differ += a != b;
        far += (a > b ? a - b : b - a) > 1;
    }
#ifdef TIPCAP_TEST_GPU
    // the GPU's double sin/cos/log may round a handful of numbers to the neighbouring float
    CHECK(far == 0 && differ <= n / 1000, "%zu of %zu normals differ (%zu by more than 1 ulp)", differ, n, far);
#else
    CHECK(differ == 0, "%zu of %zu normals differ from the CPU's (%zu by more than 1 ulp)", differ, n, far);
#endif
    be->free(be, d);
    free(want);
    free(got);
}

// ------------------------------------------------------------------------------- shuffle mode
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
    test_seed();
    cpu = backend_cpu_create();
    int shuffled_child = argc > 1 && !strcmp(argv[1], SHUFFLED_CHILD_FLAG);
    RUN(test_backend_names);
    RUN(test_cast);
    RUN(test_embedding_forward);
    RUN(test_embedding_backward);
    RUN(test_bag_mean_forward);
    RUN(test_bag_mean_backward);
    RUN(test_layernorm_forward);
    RUN(test_residual_layernorm_forward);
    RUN(test_layernorm_backward);
    RUN(test_matmul_forward);
    RUN(test_matmul_backward);
    RUN(test_gelu_forward);
    RUN(test_gelu_backward);
    RUN(test_add);
    RUN(test_crossentropy);
    RUN(test_crossentropy_bad_targets);
    RUN(test_adamw);
    RUN(test_sum_squares_and_scale);
    RUN(test_gap_sample);
    RUN(test_random_normal);
    if (!shuffled_child) {
        RUN(test_philox_known_answers);
        RUN(test_cuda_shuffled);
    }
    for (int a = 0; a < 2; a++)
        if (gpu[a]) gpu[a]->destroy(gpu[a]);
    cpu->destroy(cpu);
    return test_summary();
}
