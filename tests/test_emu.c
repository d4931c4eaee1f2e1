// Tests of the CPU emulation of CUDA (kernels/emu/): thread identity, barriers, shared memory, warp
// exchanges, atomics, bf16, launch errors, the runtime API, cuBLAS/cuBLASLt, the error reports
// (red zones, divergent barriers, deadlocks) and the harness's power to catch a missing
// __syncthreads() and an off-by-one tile bound, in order and in shuffle mode.
// Built twice: against the emulation (make test) and against real CUDA (make test-gpu), where the
// cases that check the emulation itself are skipped and the others check its expectations on a GPU.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "tests/emu_test_kernels.h"
#include "tests/harness.h"

// ---------------------------------------------------------------- helpers
static uint64_t rng;
static uint64_t next_u64(void) {  // splitmix64
    uint64_t z = (rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static float uniform(void) { return (float)((next_u64() >> 40) + 0.5) / 16777216.0f; }
static float normal(void) { return sqrtf(-2.0f * logf(uniform())) * cosf(6.2831853f * uniform()); }

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#define NEED_DEVICE() NEED_GPU(etk_emulated() || etk_device_count() > 0)
#ifdef TIPCAP_TEST_GPU
#define EMULATION_ONLY() SKIP("checks the emulation itself")
#else
#define EMULATION_ONLY() NEED_DEVICE()
#endif

static const int kCudaErrorInvalidValue = 1, kCudaErrorInvalidConfiguration = 9, kCudaErrorInvalidDevice = 101,
                 kCudaErrorInvalidResourceHandle = 400, kCudaErrorLaunchOutOfResources = 701;
static const int kCublasInvalidValue = 7, kCublasNotSupported = 15;
static const uint32_t kPoison32 = 0x7fff7fffu;  // what the emulation leaves in unwritten memory

// ---------------------------------------------------------------- bf16 reference rounding
// value = (negative ? -1 : 1) * mant * 2^exp2, rounded once to bf16 (nearest, ties to even) with
// integer arithmetic: 8 significant bits, or the fixed quantum 2^-133 below the normal range.
static uint16_t ref_bf16(int negative, uint64_t mant, int exp2) {
    uint16_t sign = negative ? 0x8000 : 0;
    if (mant == 0) return sign;
    int e = 63 - __builtin_clzll(mant) + exp2;  // floor(log2(value))
    int q = e - 7 < -133 ? -133 : e - 7;       // exponent of the last kept bit
    int shift = q - exp2;
    uint64_t n;
    if (shift <= 0) {
        n = mant << -shift;
    } else if (shift > 64) {
        n = 0;
    } else {
        uint64_t kept = shift == 64 ? 0 : mant >> shift;
        uint64_t rem = shift == 64 ? mant : mant & ((1ull << shift) - 1);
        uint64_t half = 1ull << (shift - 1);
        n = kept + (rem > half || (rem == half && (kept & 1)));
    }
    float f = ldexpf((float)n, q);  // exact (at most 9 significant bits), or infinity on overflow
    return (uint16_t)(sign | (float_bits(f) >> 16));
}
static uint16_t ref_float_to_bf16(float f) {
    uint32_t u = float_bits(f);
    uint32_t exp_field = (u >> 23) & 0xff, frac = u & 0x7fffff;
    if (exp_field == 0xff) return frac ? 0x7fff : (uint16_t)((u >> 16) & 0xff80);
    return exp_field ? ref_bf16(u >> 31, frac | 0x800000u, (int)exp_field - 150) : ref_bf16(u >> 31, frac, -149);
}
static uint16_t ref_double_to_bf16(double d) {
    uint64_t u;
    memcpy(&u, &d, 8);
    uint64_t exp_field = (u >> 52) & 0x7ff, frac = u & ((1ull << 52) - 1);
    int negative = (int)(u >> 63);
    if (exp_field == 0x7ff) return frac ? 0x7fff : (uint16_t)(negative ? 0xff80 : 0x7f80);
    return exp_field ? ref_bf16(negative, frac | (1ull << 52), (int)exp_field - 1075) : ref_bf16(negative, frac, -1074);
}
static float bf16_value(uint16_t h) { return bits_float((uint32_t)h << 16); }

// Cases on what the emulation does with code CUDA leaves undefined (threads that exit before a
// barrier, masks naming exited lanes) run with the checks off, since the checks report such code.
static void set_checks(int on) {
#ifndef TIPCAP_TEST_GPU
    etk_set_checks(on);
#else
    (void)on;
#endif
}

// ---------------------------------------------------------------- thread identity and barriers
static void check_rotate(EtkDim grid, EtkDim block, int active) {
    int T = block.x * block.y * block.z, B = grid.x * grid.y * grid.z;
    size_t n = (size_t)B * T;
    float* out = mallocCheck(n * sizeof(float));
    for (size_t i = 0; i < n; i++) out[i] = -1.0f;
    CHECK(etk_barrier_rotate(grid, block, active, out) == 0, "launch failed");
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float want = t < active ? 10000.0f * b + t + 0.5f : -1.0f;
            if (out[(size_t)b * T + t] != want && bad++ < 3)
                CHECK(0, "grid (%d,%d,%d) block (%d,%d,%d) active %d: block %d thread %d got %g, want %g", grid.x,
                      grid.y, grid.z, block.x, block.y, block.z, active, b, t, out[(size_t)b * T + t], want);
        }
    free(out);
}

static void test_barrier_identity(void) {
    NEED_DEVICE();
    check_rotate((EtkDim){3, 2, 2}, (EtkDim){8, 4, 2}, 64);
    check_rotate((EtkDim){5, 1, 1}, (EtkDim){77, 1, 1}, 77);
    check_rotate((EtkDim){1, 1, 1}, (EtkDim){1, 1, 1}, 1);
    set_checks(0);
    check_rotate((EtkDim){2, 1, 1}, (EtkDim){1024, 1, 1}, 1000);  // 24 threads exit before the barriers
    check_rotate((EtkDim){7, 1, 1}, (EtkDim){33, 1, 1}, 20);
    set_checks(1);
}

static void test_barrier_reductions(void) {
    NEED_DEVICE();
    int sizes[] = {1, 32, 100, 1024};
    for (int s = 0; s < 4; s++) {
        int T = sizes[s], blocks = 3;
        int out[15];
        CHECK(etk_barrier_reduce(blocks, T, out) == 0, "launch failed");
        int want[5] = {(T + 2) / 3, 1, T == 1, 1, 0};
        for (int b = 0; b < blocks; b++)
            for (int i = 0; i < 5; i++)
                CHECK(out[5 * b + i] == want[i], "T=%d block %d reduction %d: got %d, want %d", T, b, i, out[5 * b + i],
                      want[i]);
    }
}

static void test_shared_memory_per_block(void) {
    NEED_DEVICE();
    int blocks = 300, T = 96;
    float* out = mallocCheck((size_t)blocks * T * sizeof(float));
    CHECK(etk_shared_private(blocks, T, out) == 0, "launch failed");
    int bad = 0;
    for (int b = 0; b < blocks; b++)
        for (int t = 0; t < T; t++)
            if (out[b * T + t] != 3.0f * b + 1.0f && bad++ < 3)
                CHECK(0, "block %d thread %d saw %g, want %g", b, t, out[b * T + t], 3.0f * b + 1.0f);
    free(out);
}

static void check_dynamic(int blocks, int T, size_t bytes) {
    float* out = mallocCheck((size_t)blocks * T * sizeof(float));
    CHECK(etk_dynamic_shared(blocks, T, bytes, out) == 0, "launch with %zu bytes failed", bytes);
    int bad = 0;
    for (int b = 0; b < blocks; b++)
        for (int t = 0; t < T; t++) {
            float want = 1000.0f * b + (T - 1 - t);
            if (out[b * T + t] != want && bad++ < 3)
                CHECK(0, "%zu bytes: block %d thread %d got %g, want %g", bytes, b, t, out[b * T + t], want);
        }
    free(out);
}

static void test_dynamic_shared_memory(void) {
    NEED_DEVICE();
    check_dynamic(4, 256, 1024);
    check_dynamic(3, 1024, 64 * 1024);  // above the default limit, after cudaFuncSetAttribute
}

static void test_unwritten_shared_is_poisoned(void) {
    EMULATION_ONLY();
    uint32_t s = 0, d = 0;
    CHECK(etk_shared_unwritten(&s, &d) == 0, "launch failed");
    CHECK(s == kPoison32, "a __shared__ float read before any write in its block: 0x%08x, want the poison 0x%08x", s,
          kPoison32);
    CHECK(d == kPoison32, "dynamic shared memory read before any write in its block: 0x%08x, want 0x%08x", d, kPoison32);
}

static void test_local_arrays(void) {
    NEED_DEVICE();
    float out[64];
    CHECK(etk_local_array(64, out) == 0, "launch failed");
    for (int t = 0; t < 64; t++) CHECK(out[t] == 24571.0f * t, "thread %d: %g, want %g", t, out[t], 24571.0f * t);
}

// ---------------------------------------------------------------- warp exchanges
// The source lane as CUDA's documentation states it, for a lane in a segment of `width` lanes.
static int ref_source_lane(int op, int lane, int arg, int width) {
    int first = lane / width * width;
    switch (op) {
        case 0: return first + arg % width;
        case 1: return lane - arg >= first ? lane - arg : lane;
        case 2: return lane + arg < first + width ? lane + arg : lane;
        default: return (lane ^ arg) < first + width ? lane ^ arg : lane;
    }
}

static void check_shuffle(int op, int type, int T, unsigned mask, int width) {
    static const char* ops[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"};
    static const char* types[] = {"float", "double", "int", "bf16"};
    int arg[1024] = {0};
    double out[1024];
    for (int t = 0; t < T; t++) arg[t] = op == 0 ? (int)(next_u64() % 64) : (int)(next_u64() % (op == 3 ? 32 : width + 1));
    int names_missing_lanes = T % 32 && (mask >> (T % 32));  // a partial last warp
    set_checks(!names_missing_lanes);
    CHECK(etk_shuffle(op, type, T, mask, arg, width, out) == 0, "launch failed");
    set_checks(1);
    int bad = 0;
    for (int t = 0; t < T; t++) {
        int lane = t % 32, warp = t / 32;
        double want;
        int poison = 0;
        if (!((mask >> lane) & 1)) {
            want = -1.0;
        } else {
            int src = ref_source_lane(op, lane, arg[t], width), ts = warp * 32 + src;
            if (((mask >> src) & 1) && ts < T) {
                want = type == 3 ? src + 1 : src + 1 + 64 * warp;
            } else {  // the source lane does not take part: undefined on a GPU, poison here
                if (!etk_emulated()) continue;
                poison = 1;
                want = type == 2 ? (double)(int32_t)kPoison32 : NAN;
            }
        }
        int ok = poison && type != 2 ? isnan(out[t]) : out[t] == want;
        if (!ok && bad++ < 3)
            CHECK(0, "%s<%s> T=%d mask 0x%08x width %d: thread %d (arg %d) got %g, want %g", ops[op], types[type], T,
                  mask, width, t, arg[t], out[t], want);
    }
}

static void test_shuffles(void) {
    NEED_DEVICE();
    unsigned masks[] = {0xffffffffu, 0x0000ffffu, 0xf0f0f0f0u};
    int widths[] = {32, 16, 8, 2};
    int blocks[] = {64, 48};  // 48: the second warp has 16 lanes
    for (int op = 0; op < 4; op++)
        for (int type = 0; type < 4; type++)
            for (int m = 0; m < 3; m++)
                for (int w = 0; w < 4; w++)
                    for (int b = 0; b < 2; b++) check_shuffle(op, type, blocks[b], masks[m], widths[w]);
}

static void test_votes(void) {
    NEED_DEVICE();
    unsigned masks[] = {0xffffffffu, 0x00ff00ffu};
    int sizes[] = {64, 40};
    for (int m = 0; m < 2; m++)
        for (int s = 0; s < 2; s++)
            for (int density = 0; density < 3; density++) {  // no, some, all predicates true
                int T = sizes[s];
                unsigned mask = masks[m];
                int pred[64], any[64], all[64];
                unsigned ballot[64];
                for (int t = 0; t < T; t++) {
                    pred[t] = density == 0 ? 0 : density == 2 ? 1 + (int)(next_u64() % 5) : (int)(next_u64() % 2);
                    ballot[t] = 12345;
                    any[t] = all[t] = 7;
                }
                set_checks(T % 32 == 0 || !(mask >> (T % 32)));  // a mask naming lanes past a partial warp
                CHECK(etk_vote(T, mask, pred, ballot, any, all) == 0, "launch failed");
                set_checks(1);
                for (int t = 0; t < T; t++) {
                    if (!((mask >> (t % 32)) & 1)) {
                        CHECK(ballot[t] == 12345 && any[t] == 7 && all[t] == 7, "thread %d outside the mask wrote", t);
                        continue;
                    }
                    unsigned want = 0, members = 0;
                    for (int l = 0; l < 32; l++) {
                        int u = t / 32 * 32 + l;
                        if (!((mask >> l) & 1) || u >= T) continue;
                        members |= 1u << l;
                        if (pred[u]) want |= 1u << l;
                    }
                    CHECK(ballot[t] == want, "T=%d mask 0x%08x thread %d: ballot 0x%08x, want 0x%08x", T, mask, t,
                          ballot[t], want);
                    CHECK(!any[t] == !want, "thread %d: __any_sync %d, ballot 0x%08x", t, any[t], want);
                    CHECK(!all[t] == !(want == members), "thread %d: __all_sync %d, ballot 0x%08x of 0x%08x", t, all[t],
                          want, members);
                }
            }
}

static void test_syncwarp(void) {
    NEED_DEVICE();
    int out[96];
    CHECK(etk_syncwarp(96, out) == 0, "launch failed");
    for (int t = 0; t < 96; t++) {
        int want = 3 * ((t & ~31) | ((t + 1) & 31));
        CHECK(out[t] == want, "thread %d: %d, want %d", t, out[t], want);
    }
}

// ---------------------------------------------------------------- atomics
static void test_atomics(void) {
    NEED_DEVICE();
    int blocks = 37, T = 128, N = blocks * T;
    int results[6];
    float fsum;
    double dsum;
    unsigned long long cas;
    int* ticket = mallocCheck((size_t)N * sizeof(int));
    int* exch = mallocCheck((size_t)N * sizeof(int));
    CHECK(etk_atomics(blocks, T, results, &fsum, &dsum, &cas, ticket, exch) == 0, "launch failed");
    int max = -1, min = 1 << 30;
    for (int g = 0; g < N; g++) {
        int v = (7919 * g) % 10007;
        if (v > max) max = v;
        if (v - 5000 < min) min = v - 5000;
    }
    CHECK(results[0] == N, "atomicAdd(int): %d, want %d", results[0], N);
    CHECK((unsigned)results[1] == 2u * N, "atomicAdd(unsigned): %u, want %u", (unsigned)results[1], 2u * N);
    CHECK(results[2] == max, "atomicMax: %d, want %d", results[2], max);
    CHECK(results[3] == min, "atomicMin: %d, want %d", results[3], min);
    CHECK(results[4] == -N, "atomicSub: %d, want %d", results[4], -N);
    CHECK(fsum == 0.5f * N, "atomicAdd(float): %g, want %g", fsum, 0.5f * N);
    CHECK(dsum == 0.25 * N, "atomicAdd(double): %g, want %g", dsum, 0.25 * N);
    CHECK(cas == 3ull * N, "atomicCAS loop: %llu, want %llu", cas, 3ull * N);
    // tickets: a permutation of 0..N-1; exchanges: a chain through -1 and every g, ending at results[5]
    char* seen = calloc((size_t)N + 1, 1);
    int ticket_ok = 1, exch_ok = 1;
    for (int g = 0; g < N; g++) {
        if (ticket[g] < 0 || ticket[g] >= N || seen[ticket[g]]) ticket_ok = 0;
        else seen[ticket[g]] = 1;
    }
    memset(seen, 0, (size_t)N + 1);
    for (int g = 0; g < N; g++) {
        int v = exch[g] + 1;  // -1 -> 0
        if (v < 0 || v > N || seen[v]) exch_ok = 0;
        else seen[v] = 1;
    }
    if (results[5] < 0 || results[5] >= N || seen[results[5] + 1]) exch_ok = 0;
    CHECK(ticket_ok, "the values atomicAdd returned are not a permutation of 0..%d", N - 1);
    CHECK(exch_ok, "the values atomicExch returned and left do not form one chain");
    free(seen);
    free(ticket);
    free(exch);
}

static void test_more_atomics(void) {
    NEED_DEVICE();
    int blocks = 5, T = 96;
    unsigned N = (unsigned)(blocks * T), bits[3], wrap, down, x = 0;
    uint16_t bf;
    float fx;
    CHECK(etk_more_atomics(blocks, T, bits, &wrap, &down, &bf, &fx) == 0, "launch failed");
    for (unsigned g = 0; g < N; g++) x ^= g;
    CHECK(bits[0] == 0xffffffffu, "atomicOr: 0x%08x", bits[0]);
    CHECK(bits[1] == 0, "atomicAnd: 0x%08x", bits[1]);
    CHECK(bits[2] == x, "atomicXor: 0x%08x, want 0x%08x", bits[2], x);
    CHECK(wrap == N % 10, "atomicInc with limit 9: %u, want %u", wrap, N % 10);
    CHECK(down == (10 - N % 10) % 10, "atomicDec with limit 9: %u, want %u", down, (10 - N % 10) % 10);
    // 480 additions of 0.25 in bf16: exact up to 64, then steps of 0.25 fall below half an ulp
    // and round away (ties to even keep 64).
    CHECK(bf16_value(bf) == 64.0f, "atomicAdd(bf16) of 0.25 x %u: %g, want 64 (bf16 saturates there)", N,
          bf16_value(bf));
    CHECK(fx >= 0.0f && fx < (float)N && fx == floorf(fx), "atomicExch(float) left %g", fx);
}

// ---------------------------------------------------------------- bf16
// Every sign, exponent and 7-bit mantissa with the low 16 bits that decide rounding (zero, just
// above zero, below, at and above the tie, all ones), then random patterns.
static float* conversion_inputs(size_t* count) {
    static const uint32_t lows[] = {0x0000, 0x0001, 0x4000, 0x7fff, 0x8000, 0x8001, 0xc000, 0xffff};
    size_t n_random = (size_t)1 << 22, n = 65536 * 8 + n_random;
    float* in = mallocCheck(n * sizeof(float));
    size_t i = 0;
    for (uint32_t hi = 0; hi < 65536; hi++)
        for (int l = 0; l < 8; l++) in[i++] = bits_float(hi << 16 | lows[l]);
    while (i < n) in[i++] = bits_float((uint32_t)next_u64());
    *count = n;
    return in;
}

static void test_bf16_from_float(void) {
    NEED_DEVICE();
    size_t n;
    float* in = conversion_inputs(&n);
    uint16_t* out = mallocCheck(n * sizeof(uint16_t));
    for (int rn = 0; rn < 2; rn++) {
        CHECK((rn ? etk_float_to_bf16_rn : etk_float_to_bf16)(in, out, n) == 0, "launch failed");
        size_t bad = 0;
        for (size_t i = 0; i < n; i++) {
            uint16_t want = ref_float_to_bf16(in[i]);
            if (out[i] != want && bad++ < 5)
                CHECK(0, "%s(0x%08x): 0x%04x, want 0x%04x", rn ? "__float2bfloat16_rn" : "__float2bfloat16",
                      float_bits(in[i]), out[i], want);
        }
        CHECK(bad == 0, "%zu of %zu conversions differ from round-to-nearest-even", bad, n);
    }
    free(in);
    free(out);
}

static void test_bf16_to_float_and_pairs(void) {
    NEED_DEVICE();
    uint16_t* all = mallocCheck(65536 * sizeof(uint16_t));
    float* back = mallocCheck(65536 * sizeof(float));
    for (uint32_t h = 0; h < 65536; h++) all[h] = (uint16_t)h;
    CHECK(etk_bf16_to_float(all, back, 65536) == 0, "launch failed");
    for (uint32_t h = 0; h < 65536; h++)
        if (float_bits(back[h]) != h << 16) {
            CHECK(0, "__bfloat162float(0x%04x) = 0x%08x, want 0x%08x", h, float_bits(back[h]), h << 16);
            break;
        }
    size_t n = 100000;
    float* in = mallocCheck(2 * n * sizeof(float));
    uint16_t* pairs = mallocCheck(2 * n * sizeof(uint16_t));
    float* halves = mallocCheck(2 * n * sizeof(float));
    for (size_t i = 0; i < 2 * n; i++) in[i] = normal() * 100.0f;
    CHECK(etk_bf16_pairs(in, pairs, halves, n) == 0, "launch failed");
    for (size_t i = 0; i < 2 * n; i++) {
        uint16_t want = ref_float_to_bf16(in[i]);
        if (pairs[i] != want || halves[i] != bf16_value(want)) {
            CHECK(0, "__floats2bfloat162_rn element %zu of %g: 0x%04x -> %g, want 0x%04x -> %g", i, in[i], pairs[i],
                  halves[i], want, bf16_value(want));
            break;
        }
    }
    free(all);
    free(back);
    free(in);
    free(pairs);
    free(halves);
}

static void test_bf16_from_double(void) {
    NEED_DEVICE();
    size_t n = 200000, i = 0;
    double* in = mallocCheck(n * sizeof(double));
    uint16_t* out = mallocCheck(n * sizeof(uint16_t));
    // values one double ulp around bf16 ties, where rounding through float would go wrong
    while (i < n / 2) {
        uint16_t h = (uint16_t)next_u64();
        if ((h & 0x7f80) == 0x7f80) continue;
        double tie = ((double)bf16_value(h) + (double)bf16_value((uint16_t)(h + 1))) / 2;
        in[i++] = nextafter(tie, (next_u64() & 1) ? INFINITY : -INFINITY);
        in[i++] = tie;
    }
    while (i < n) {  // random doubles over the float range and beyond
        double mant = 1.0 + (double)(next_u64() >> 11) / 9007199254740992.0;
        in[i++] = ((next_u64() & 1) ? -1 : 1) * ldexp(mant, (int)(next_u64() % 300) - 150);
    }
    CHECK(etk_double_to_bf16(in, out, n) == 0, "launch failed");
    for (i = 0; i < n; i++) {
        uint16_t want = ref_double_to_bf16(in[i]);
        if (out[i] != want) {
            CHECK(0, "__double2bfloat16(%.17g): 0x%04x, want 0x%04x", in[i], out[i], want);
            break;
        }
    }
    free(in);
    free(out);
}

static void test_bf16_arithmetic(void) {
    NEED_DEVICE();
    size_t n = 100000;
    uint16_t *a = mallocCheck(n * 2), *b = mallocCheck(n * 2), *c = mallocCheck(n * 2), *out = mallocCheck(5 * n * 2);
    for (size_t i = 0; i < n; i++) {
        // exponents within +-16 keep every exact result representable in a double
        a[i] = ref_float_to_bf16(ldexpf(normal(), (int)(next_u64() % 33) - 16));
        b[i] = ref_float_to_bf16(ldexpf(normal(), (int)(next_u64() % 33) - 16));
        c[i] = ref_float_to_bf16(ldexpf(normal(), (int)(next_u64() % 33) - 16));
        if (bf16_value(b[i]) == 0.0f) b[i] = 0x3f80;
    }
    CHECK(etk_bf16_arith(a, b, c, out, n) == 0, "launch failed");
    static const char* names[] = {"+", "-", "*", "/", "__hfma"};
    for (size_t i = 0; i < n; i++) {
        double x = bf16_value(a[i]), y = bf16_value(b[i]), z = bf16_value(c[i]);
        double exact[5] = {x + y, x - y, x * y, x / y, x * y + z};
        for (int op = 0; op < 5; op++) {
            uint16_t want = ref_double_to_bf16(exact[op]);
            if (out[5 * i + op] != want) {
                CHECK(0, "bf16 %s of %g, %g (, %g): 0x%04x, want 0x%04x", names[op], x, y, z, out[5 * i + op], want);
                i = n;
                break;
            }
        }
    }
    free(a);
    free(b);
    free(c);
    free(out);
}

// ---------------------------------------------------------------- launch configuration
static void check_launch(EtkDim grid, EtkDim block, size_t shared, int max_dynamic, int want_error) {
    int ran = -1, again = -1;
    int err = etk_launch_config(grid, block, shared, max_dynamic, &ran, &again);
    CHECK(err == want_error, "<<<(%d,%d,%d), (%d,%d,%d), %zu>>> (limit %d): error %d, want %d", grid.x, grid.y, grid.z,
          block.x, block.y, block.z, shared, max_dynamic, err, want_error);
    CHECK(ran == (want_error == 0), "<<<(%d,%d,%d), (%d,%d,%d), %zu>>>: the kernel %s", grid.x, grid.y, grid.z, block.x,
          block.y, block.z, shared, ran ? "ran" : "did not run");
    CHECK(again == 0, "cudaGetLastError did not clear the error (%d)", again);
}

// The devices whose limits the launch tests check: under the emulation each device profile the build
// runs on (emu_device_profiles), one after the other; on a GPU, that GPU (one empty name).
enum { MAX_PROFILES = 16 };
static int device_profiles(char names[MAX_PROFILES][16]) {
#ifdef TIPCAP_TEST_GPU
    names[0][0] = '\0';
    return 1;
#else
    int n = 0;
    const char* p = etk_device_profiles();
    while (*p && n < MAX_PROFILES) {
        int len = (int)strcspn(p, " ");
        snprintf(names[n++], 16, "%.*s", len, p);
        p += len + (p[len] == ' ');
    }
    return n;
#endif
}
static void use_profile(const char* name) {
#ifndef TIPCAP_TEST_GPU
    if (etk_set_device(name) != 0) printf("  (no device profile %s)\n", name);
#endif
}
static size_t device_optin(void) {  // cudaDevAttrMaxSharedMemoryPerBlockOptin of the device in use
    int sms, warp, major;
    size_t per_block, optin;
    CHECK(etk_device_properties(&sms, &per_block, &optin, &warp, &major) == 0, "cudaGetDeviceProperties failed");
    return optin;
}

static void test_launch_configuration_errors(void) {
    NEED_DEVICE();
    char profiles[MAX_PROFILES][16];
    int n = device_profiles(profiles);
    for (int k = 0; k < n; k++) {
        use_profile(profiles[k]);
        EtkDim one = {1, 1, 1};
        check_launch(one, (EtkDim){1024, 1, 1}, 0, -1, 0);
        check_launch(one, (EtkDim){1025, 1, 1}, 0, -1, kCudaErrorInvalidConfiguration);
        check_launch(one, (EtkDim){32, 32, 2}, 0, -1, kCudaErrorInvalidConfiguration);
        check_launch(one, (EtkDim){1, 1, 65}, 0, -1, kCudaErrorInvalidConfiguration);
        check_launch(one, (EtkDim){0, 1, 1}, 0, -1, kCudaErrorInvalidConfiguration);
        check_launch((EtkDim){0, 1, 1}, (EtkDim){32, 1, 1}, 0, -1, kCudaErrorInvalidConfiguration);
        check_launch((EtkDim){1, 65536, 1}, (EtkDim){32, 1, 1}, 0, -1, kCudaErrorInvalidConfiguration);
        check_launch(one, (EtkDim){32, 1, 1}, 48 * 1024, -1, 0);
        check_launch(one, (EtkDim){32, 1, 1}, 48 * 1024 + 4, -1, kCudaErrorInvalidValue);
        const size_t optin = device_optin();  // 99 KiB (sm_86, sm_89, sm_120) to 227 KiB (sm_90, sm_100)
        check_launch(one, (EtkDim){32, 1, 1}, optin, (int)optin, 0);
        check_launch(one, (EtkDim){32, 1, 1}, optin + 16, (int)optin, kCudaErrorInvalidValue);
        CHECK(etk_func_attribute((int)optin) == 0, "%s: the opt-in limit of %zu bytes refused", profiles[k], optin);
        CHECK(etk_func_attribute((int)optin + 1) == kCudaErrorInvalidValue, "%s: more than the opt-in %zu bytes accepted",
              profiles[k], optin);
    }
    use_profile("all");
    int peek1, peek2, get, get_again;
    etk_peek_then_get(&peek1, &peek2, &get, &get_again);
    CHECK(peek1 == kCudaErrorInvalidConfiguration && peek2 == peek1 && get == peek1 && get_again == 0,
          "peek %d, peek %d, get %d, get %d: want %d, %d, %d, 0", peek1, peek2, get, get_again,
          kCudaErrorInvalidConfiguration, kCudaErrorInvalidConfiguration, kCudaErrorInvalidConfiguration);
}

// Static shared memory counts in both limits: 48 KiB per block without opt-in, and the device's
// opt-in limit for cudaFuncAttributeMaxDynamicSharedMemorySize plus the static bytes.
static void test_static_shared_memory_counts(void) {
    NEED_DEVICE();
    if (etk_emulated() && etk_register_heavy_registers("sm_80") < 0)
        SKIP("the build had no nvcc: the emulation knows no kernel's static shared memory");
    const size_t fixed = 16 * 1024;  // static_shared_kernel's
    char profiles[MAX_PROFILES][16];
    int n = device_profiles(profiles);
    for (int k = 0; k < n; k++) {
        use_profile(profiles[k]);
        const size_t optin = device_optin();
        CHECK(etk_static_shared_launch(0, 48 * 1024 - fixed) == 0, "%s: 32 KiB dynamic + 16 KiB static refused",
              profiles[k]);
        CHECK(etk_static_shared_launch(0, 48 * 1024 - fixed + 16) == kCudaErrorInvalidValue,
              "%s: 16 bytes over 48 KiB of static and dynamic shared memory without opt-in accepted", profiles[k]);
        CHECK(etk_static_shared_attribute((int)(optin - fixed)) == 0, "%s: opt-in to %zu - 16 KiB refused", profiles[k],
              optin);
        CHECK(etk_static_shared_launch(1, optin - fixed) == 0, "%s: a launch with the opt-in %zu - 16 KiB refused",
              profiles[k], optin);
        CHECK(etk_static_shared_attribute((int)(optin - fixed + 16)) == kCudaErrorInvalidValue,
              "%s: opt-in to 16 bytes more than %zu - 16 KiB of static accepted", profiles[k], optin);
    }
    use_profile("all");
}

// 65536 registers per block, allocated per warp in units of 256 registers, the warps counted in
// multiples of the SM's 4 sub-partitions (cuda_occupancy.h's hardware check): the largest block
// that fits runs, one more warp does not (although it fits 65536 / (registers x 32) warps when the
// rounding is not the same), and 1024 threads of a 100-register kernel do not.
static void test_registers_per_block(void) {
    NEED_DEVICE();
    char profiles[MAX_PROFILES][16];
    int n = device_profiles(profiles);
    if (etk_register_heavy_registers(profiles[0]) < 0) SKIP("the build had no nvcc: the emulation knows no kernel's registers");
    for (int k = 0; k < n; k++) {
        use_profile(profiles[k]);
        const int regs = etk_register_heavy_registers(profiles[k]);
        REQUIRE(regs > 64 && regs <= 255, "%s: register_heavy_kernel has %d registers: the test needs 65..255",
                profiles[k], regs);
        const int per_warp = (regs * 32 + 255) / 256 * 256;
        const int warps = 65536 / per_warp / 4 * 4;
        CHECK(etk_register_heavy(warps * 32) == 0, "%s: %d registers x %d threads refused", profiles[k], regs,
              warps * 32);
        CHECK(etk_register_heavy((warps + 1) * 32) == kCudaErrorLaunchOutOfResources,
              "%s: %d registers x %d threads (%d warps: %d registers rounded to %d warps) accepted", profiles[k], regs,
              (warps + 1) * 32, warps + 1, per_warp * (warps + 1), warps + 4);
        CHECK(etk_register_heavy(1024) == kCudaErrorLaunchOutOfResources, "%s: %d registers x 1024 threads accepted",
              profiles[k], regs);
    }
    use_profile("all");
}

// ---------------------------------------------------------------- runtime API
static void test_memory_and_device_api(void) {
    NEED_DEVICE();
    enum { H2D = 1, D2H = 2 };
    size_t bytes = 1000;
    unsigned char* host = mallocCheck(bytes + 8);
    void* dev = etk_malloc(bytes);
    if (etk_emulated()) {
        CHECK(etk_memcpy(host, dev, bytes, D2H) == 0, "copy back failed");
        int poisoned = 1;
        for (size_t i = 0; i < bytes; i++) poisoned &= host[i] == ((i & 1) ? 0x7f : 0xff);
        CHECK(poisoned, "a fresh allocation is not filled with the NaN poison");
        CHECK(etk_memcpy(dev, host, bytes + 1, H2D) == kCudaErrorInvalidValue, "a copy past the allocation passed");
        CHECK(etk_memcpy(host, dev, bytes, H2D) == kCudaErrorInvalidValue, "a copy with the wrong kind passed");
    }
    CHECK(etk_memset(dev, 0, bytes) == 0, "cudaMemset failed");
    CHECK(etk_memcpy(host, dev, bytes, D2H) == 0, "copy back failed");
    int zero = 1;
    for (size_t i = 0; i < bytes; i++) zero &= host[i] == 0;
    CHECK(zero, "cudaMemset(0) left nonzero bytes");
    CHECK(etk_free(dev) == 0, "cudaFree failed");
    if (etk_emulated()) CHECK(etk_free(dev) == kCudaErrorInvalidValue, "a second cudaFree of the same pointer passed");
    free(host);

    int sms, warp, major;
    size_t per_block, optin;
    CHECK(etk_device_properties(&sms, &per_block, &optin, &warp, &major) == 0, "cudaGetDeviceProperties failed");
    CHECK(warp == 32 && per_block == 48 * 1024, "warpSize %d, sharedMemPerBlock %zu", warp, per_block);
    if (etk_emulated())  // the default profile "all": the most restrictive limits of sm_80 ... sm_120
        CHECK(sms == 58 && optin == 99 * 1024 && major == 8, "emulated device: %d SMs, %zu opt-in, sm_%d", sms, optin,
              major);
    float ms = -1;
    CHECK(etk_events(&ms) == 0 && ms >= 0.0f, "cudaEventElapsedTime: %g ms", ms);

    int err[9], copied = 0, attr_sms = 0;
    size_t free_bytes = 0, total_bytes = 0;
    etk_runtime_misc(err, &copied, &attr_sms, &free_bytes, &total_bytes);
    int want[9] = {0, 0, 0, 0, 0, kCudaErrorInvalidResourceHandle, 0, 0, kCudaErrorInvalidDevice};
    for (int i = 0; i < 9; i++)
        if (i != 5 || etk_emulated()) CHECK(err[i] == want[i], "runtime call %d: error %d, want %d", i, err[i], want[i]);
    CHECK(copied, "cudaMemcpyAsync / cudaMemsetAsync on a stream gave wrong data");
    CHECK(attr_sms == sms, "cudaDevAttrMultiProcessorCount %d, cudaDeviceProp %d", attr_sms, sms);
    CHECK(total_bytes > 0 && free_bytes <= total_bytes, "cudaMemGetInfo: %zu free of %zu", free_bytes, total_bytes);
}

// ---------------------------------------------------------------- cuBLAS / cuBLASLt
// Column-major element (r, c) of op(X) stored with leading dimension ld (type 0 fp32, 1 bf16)
static double element(const void* X, int type, int ld, int trans, int r, int c) {
    size_t i = trans ? (size_t)c + (size_t)r * ld : (size_t)r + (size_t)c * ld;
    return type ? bf16_value(((const uint16_t*)X)[i]) : ((const float*)X)[i];
}
static void* random_matrix(int rows, int cols, int ld, int type) {
    size_t n = (size_t)ld * cols;
    void* X = mallocCheck(n * (type ? 2 : 4));
    for (size_t i = 0; i < n; i++) {
        float v = normal();
        if (type) ((uint16_t*)X)[i] = ref_float_to_bf16(v);
        else ((float*)X)[i] = v;
    }
    return X;
}
static double gelu_ref(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
static double gelu_grad_ref(double x) {
    double u = 0.7978845608028654 * (x + 0.044715 * x * x * x), t = tanh(u);
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
}
// Relative error of stored values against a double reference, over a column-major m x n region
static double matrix_error(const void* X, int type, int ld, const double* want, int m, int n) {
    double num = 0, den = 0;
    for (int c = 0; c < n; c++)
        for (int r = 0; r < m; r++) {
            double got = element(X, type, ld, 0, r, c), w = want[r + (size_t)c * m];
            if (!isfinite(got)) return INFINITY;
            num += (got - w) * (got - w);
            den += w * w;
        }
    return sqrt(num / (den > 0 ? den : 1));
}
static double tolerance(int type) { return type ? 1e-2 : 1e-5; }

static void check_gemm(int ta, int tb, int m, int n, int k, int ab_type, int c_type, int batch, float alpha, float beta) {
    int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 1, ldc = m + 2;
    long long sa = (long long)lda * (ta ? m : k) + 5, sb = (long long)ldb * (tb ? k : n), sc = (long long)ldc * n + 7;
    void* A = random_matrix(lda, (int)(sa * batch / lda + 1), lda, ab_type);
    void* B = random_matrix(ldb, (int)(sb * batch / ldb + 1), ldb, ab_type);
    void* C = random_matrix(ldc, (int)(sc * batch / ldc + 1), ldc, c_type);
    size_t c_elems = (size_t)(sc * batch / ldc + 1) * ldc;
    void* C0 = mallocCheck(c_elems * (c_type ? 2 : 4));
    memcpy(C0, C, c_elems * (c_type ? 2 : 4));
    int status = batch == 1 && ab_type == 0 && c_type == 0
                     ? etk_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)
                     : etk_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc, ab_type, c_type, batch, sa, sb, sc);
    CHECK(status == 0, "gemm status %d", status);
    double* want = mallocCheck((size_t)m * n * sizeof(double));
    size_t es_ab = ab_type ? 2 : 4, es_c = c_type ? 2 : 4;
    for (int i = 0; i < batch; i++) {
        const char* Ai = (const char*)A + (size_t)(i * sa) * es_ab;
        const char* Bi = (const char*)B + (size_t)(i * sb) * es_ab;
        const char* C0i = (const char*)C0 + (size_t)(i * sc) * es_c;
        for (int c = 0; c < n; c++)
            for (int r = 0; r < m; r++) {
                double acc = 0;
                for (int kk = 0; kk < k; kk++)
                    acc += element(Ai, ab_type, lda, ta, r, kk) * element(Bi, ab_type, ldb, tb, kk, c);
                want[r + (size_t)c * m] = alpha * acc + beta * element(C0i, c_type, ldc, 0, r, c);
            }
        double err = matrix_error((const char*)C + (size_t)(i * sc) * es_c, c_type, ldc, want, m, n);
        CHECK(err < tolerance(c_type), "gemm ta=%d tb=%d %dx%dx%d types %d/%d batch %d/%d: relative error %.3g", ta, tb,
              m, n, k, ab_type, c_type, i, batch, err);
    }
    // the padding rows between ld and m must be untouched
    for (int i = 0; i < batch; i++)
        for (int c = 0; c < n; c++)
            for (int r = m; r < ldc; r++) {
                size_t at = (size_t)(i * sc) + r + (size_t)c * ldc;
                if (memcmp((char*)C + at * es_c, (char*)C0 + at * es_c, es_c) != 0) {
                    CHECK(0, "gemm wrote row %d of column %d, beyond m = %d", r, c, m);
                    c = n;
                    i = batch;
                    break;
                }
            }
    free(A);
    free(B);
    free(C);
    free(C0);
    free(want);
}

static void test_cublas_gemm(void) {
    NEED_DEVICE();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm(ta, tb, 17, 9, 23, 0, 0, 1, 1.0f, 0.0f);     // cublasSgemm
            check_gemm(ta, tb, 17, 9, 23, 0, 0, 1, 0.5f, -1.5f);
            check_gemm(ta, tb, 13, 21, 40, 1, 1, 1, 1.0f, 0.0f);    // cublasGemmEx bf16 -> bf16
            check_gemm(ta, tb, 13, 21, 40, 1, 0, 1, 2.0f, 1.0f);    // bf16 -> fp32
            check_gemm(ta, tb, 7, 5, 11, 0, 0, 3, 1.0f, 0.25f);     // strided batched
            check_gemm(ta, tb, 7, 5, 11, 1, 1, 4, 1.0f, 0.0f);
        }
    check_gemm(0, 0, 5, 4, 0, 0, 0, 1, 1.0f, 2.0f);  // k = 0: C = beta C
    float A[4] = {0}, B[4] = {0}, C[4] = {0};
    CHECK(etk_sgemm(0, 0, 2, 2, 2, 1.0f, A, 1, B, 2, 0.0f, C, 2) == kCublasInvalidValue, "lda < m accepted");
}

static const char* epilogue_name(int e) {
    switch (e) {
        case 1: return "DEFAULT";
        case 4: return "BIAS";
        case 32: return "GELU";
        case 36: return "GELU_BIAS";
        case 160: return "GELU_AUX";
        case 164: return "GELU_AUX_BIAS";
        case 192: return "DGELU";
        case 208: return "DGELU_BGRAD";
        case 256: return "BGRADA";
        case 512: return "BGRADB";
    }
    return "?";
}

// Copy of a host buffer
static void* duplicate(const void* p, size_t bytes) {
    if (!p) return NULL;
    void* q = mallocCheck(bytes);
    memcpy(q, p, bytes);
    return q;
}

// One cublasLtMatmul with epilogue e, over `batch` strided matrices, against the documented
// semantics: D = epilogue(alpha op(A) op(B) + beta C): BIAS adds bias[row]; GELU applies the tanh
// GELU after the bias, AUX variants store its input in aux; DGELU multiplies by gelu'(aux);
// DGELU_BGRAD also writes bias[row] = sum over columns of D; BGRADA / BGRADB write the sums of
// op(A) / op(B) over k.
static void check_lt(int e, int ab_type, int cd_type, int bias_type, int separate_c, int batch) {
    int m = 24, n = 13, k = 29, ta = 1, tb = 0;
    int lda = k + 2, ldb = k, ldc = m + 3, aux_ld = 32;
    float alpha = 0.75f, beta = separate_c ? 0.5f : 0.0f;
    int uses_bias = e == 4 || e == 36 || e == 164 || e == 208 || e == 256 || e == 512;
    int uses_aux = e == 160 || e == 164 || e == 192 || e == 208;
    int bias_len = e == 512 ? n : m, bt = bias_type < 0 ? cd_type : bias_type;
    // batch i starts this many elements after batch i - 1 (a gap after each matrix)
    long long sa = (long long)lda * m + 8, sb = (long long)ldb * n + 16, sc = (long long)ldc * n + 8;
    long long sbias = bias_len + 8, saux = (long long)aux_ld * n + 16;
    size_t es = cd_type ? 2 : 4, bs = bt ? 2 : 4;
    void* A = random_matrix(lda, (int)(sa * batch / lda + 1), lda, ab_type);
    void* B = random_matrix(ldb, (int)(sb * batch / ldb + 1), ldb, ab_type);
    void* C = separate_c ? random_matrix(ldc, (int)(sc * batch / ldc + 1), ldc, cd_type) : NULL;
    size_t d_bytes = (size_t)(sc * batch) * es;
    void* D = mallocCheck(d_bytes);
    memset(D, 0xff, d_bytes);  // NaN: must be overwritten (and, as C with beta 0, ignored)
    void* bias = uses_bias ? random_matrix((int)(sbias * batch), 1, (int)(sbias * batch), bt) : NULL;
    void* aux = uses_aux ? random_matrix((int)saux, batch, (int)saux, cd_type) : NULL;
    void* bias_in = duplicate(bias, (size_t)(sbias * batch) * bs);
    void* aux_in = duplicate(aux, (size_t)(saux * batch) * es);
    EtkLtArgs args = {.ta = ta, .tb = tb, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb, .ldc = ldc,
                      .ab_type = ab_type, .cd_type = cd_type, .epilogue = e, .bias_type = bias_type,
                      .aux_ld = aux_ld, .alpha = alpha, .beta = beta, .A = A, .B = B, .C = C, .D = D,
                      .bias = bias, .aux = aux, .batch = batch, .stride_a = sa, .stride_b = sb, .stride_c = sc,
                      .stride_bias = sbias, .stride_aux = saux};
    int algos = 0;
    int status = etk_lt_matmul(&args, &algos);
    CHECK(status == 0 && algos == 1, "%s types %d/%d batch %d: status %d, %d algorithms", epilogue_name(e), ab_type,
          cd_type, batch, status, algos);

    double* pre = mallocCheck((size_t)m * n * sizeof(double));
    double* want = mallocCheck((size_t)m * n * sizeof(double));
    double* want_bias = mallocCheck((size_t)bias_len * sizeof(double));
    size_t as = ab_type ? 2 : 4;
    for (int i = 0; i < batch; i++) {
        const char* Ai = (const char*)A + (size_t)(i * sa) * as;
        const char* Bi = (const char*)B + (size_t)(i * sb) * as;
        const char* Ci = C ? (const char*)C + (size_t)(i * sc) * es : NULL;
        const char* Di = (const char*)D + (size_t)(i * sc) * es;
        const char* bias_i = bias ? (const char*)bias + (size_t)(i * sbias) * bs : NULL;
        const char* bias_in_i = bias ? (const char*)bias_in + (size_t)(i * sbias) * bs : NULL;
        const char* aux_i = aux ? (const char*)aux + (size_t)(i * saux) * es : NULL;
        const char* aux_in_i = aux ? (const char*)aux_in + (size_t)(i * saux) * es : NULL;
        memset(want_bias, 0, (size_t)bias_len * sizeof(double));
        for (int c = 0; c < n; c++)
            for (int r = 0; r < m; r++) {
                double acc = 0;
                for (int kk = 0; kk < k; kk++)
                    acc += element(Ai, ab_type, lda, ta, r, kk) * element(Bi, ab_type, ldb, tb, kk, c);
                double v = alpha * acc + (Ci ? beta * element(Ci, cd_type, ldc, 0, r, c) : 0.0);
                if (e & 4) v += element(bias_in_i, bt, bias_len, 0, r, 0);
                pre[r + (size_t)c * m] = v;
                if (e & 32) v = gelu_ref(v);
                if (e & 64) v *= gelu_grad_ref(element(aux_in_i, cd_type, aux_ld, 0, r, c));
                want[r + (size_t)c * m] = v;
                if (e == 208) want_bias[r] += v;
            }
        for (int j = 0; j < bias_len && (e == 256 || e == 512); j++)
            for (int kk = 0; kk < k; kk++)
                want_bias[j] += e == 256 ? element(Ai, ab_type, lda, ta, j, kk) : element(Bi, ab_type, ldb, tb, kk, j);
        double err = matrix_error(Di, cd_type, ldc, want, m, n);
        CHECK(err < tolerance(cd_type), "%s types %d/%d bias type %d batch %d/%d: D relative error %.3g",
              epilogue_name(e), ab_type, cd_type, bias_type, i, batch, err);
        if (e == 160 || e == 164) {
            err = matrix_error(aux_i, cd_type, aux_ld, pre, m, n);
            CHECK(err < tolerance(cd_type), "%s batch %d/%d: aux relative error %.3g", epilogue_name(e), i, batch, err);
        }
        if (e == 208 || e == 256 || e == 512) {
            err = matrix_error(bias_i, bt, bias_len, want_bias, bias_len, 1);
            CHECK(err < tolerance(bt) * 2, "%s types %d/%d batch %d/%d: bias gradient relative error %.3g",
                  epilogue_name(e), ab_type, cd_type, i, batch, err);
        }
    }
    void* buffers[] = {A, B, C, D, bias, bias_in, aux, aux_in, pre, want, want_bias};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) free(buffers[i]);
}

static void test_cublaslt_epilogues(void) {
    NEED_DEVICE();
    int epilogues[] = {1, 4, 32, 36, 160, 164, 192, 208, 256, 512};
    for (int i = 0; i < 10; i++) {
        check_lt(epilogues[i], 0, 0, -1, 1, 1);
        check_lt(epilogues[i], 0, 0, -1, 0, 1);
        check_lt(epilogues[i], 1, 1, -1, 0, 1);
    }
    check_lt(4, 1, 1, 0, 1, 1);    // bf16 output, fp32 bias
    check_lt(164, 1, 1, 0, 0, 1);  // GELU_AUX_BIAS as llm.c runs it in bf16, fp32 bias
    check_lt(1, 1, 1, -1, 1, 3);   // batched, with bias and aux batch strides
    check_lt(4, 0, 0, -1, 1, 3);
    check_lt(164, 1, 1, 0, 0, 2);
    check_lt(192, 0, 0, -1, 0, 3);
}

static void test_cublaslt_refusals(void) {
    NEED_DEVICE();
    int m = 12, n = 5, k = 7;
    void* A = random_matrix(m, k, m, 0);
    void* B = random_matrix(k, n, k, 0);
    float D[12 * 5], aux[30 * 5];
    EtkLtArgs args = {.m = m, .n = n, .k = k, .lda = m, .ldb = k, .ldc = m, .epilogue = 160, .bias_type = -1,
                      .aux_ld = 30, .alpha = 1.0f, .A = A, .B = B, .D = D, .aux = aux, .batch = 1};
    int algos = -1;
    int status = etk_lt_matmul(&args, &algos);
    CHECK(algos == 0 && status != 0, "GELU_AUX with an aux leading dimension of 30 (not a multiple of 8): status %d, "
          "%d algorithms", status, algos);
    if (etk_emulated()) CHECK(status == kCublasNotSupported, "status %d, want CUBLAS_STATUS_NOT_SUPPORTED", status);
    free(A);
    free(B);
}

// ---------------------------------------------------------------- emulation only
#ifndef TIPCAP_TEST_GPU
// Runs a call that must make the emulation exit, in a child process, and checks the report.
static void expect_report(void (*fn)(void*), const char* what, const char* needle1, const char* needle2) {
    char err[4096];
    int status = run_captured(fn, NULL, err, sizeof err);
    CHECK(status == 1, "%s: exit status %d, want 1 (stderr: %s)", what, status, err);
    CHECK(strstr(err, needle1) && strstr(err, needle2), "%s: the report lacks \"%s\" or \"%s\": %s", what, needle1,
          needle2, err);
}
static void oob_after_end(void* unused) { etk_oob_write(100); }
static void oob_before_start(void* unused) { etk_oob_write(-3); }
static void oob_far_after_end(void* unused) { etk_oob_write(150); }
static void oob_dynamic_shared(void* unused) { etk_oob_dynamic_shared(); }
static void tiled_store_past_end(void* unused) {
    static float A[29 * 37], B[37 * 45], C[29 * 45];
    etk_tiled_matmul(A, B, C, 29, 45, 37, 2);
}
static void host_writes_past_device_buffer(void* unused) {
    float* p = etk_malloc(100 * sizeof(float));
    p[100] = 1.0f;  // host code through a device pointer: works here, faults on a GPU
    float out[32];
    etk_barrier_rotate((EtkDim){1, 1, 1}, (EtkDim){32, 1, 1}, 32, out);
}
static void divergent_barrier(void* unused) { etk_divergent_barrier(); }
static void dynamic_shared_over_declared(void* unused) { etk_dynamic_shared_over_declared(); }
static void barrier_deadlock(void* unused) { etk_barrier_deadlock(); }
static void divergent_shuffle(void* unused) { etk_divergent_shuffle(); }
static void mask_without_self(void* unused) { etk_shuffle_mask_without_self(); }
static void check_case_1(void* unused) { etk_check_case(1); }
static void check_case_3(void* unused) { etk_check_case(3); }
static void check_case_5(void* unused) { etk_check_case(5); }
static void check_case_7(void* unused) { etk_check_case(7); }
static void shared_race_after_store(void* unused) {
    float x[300] = {0}, sums[2];
    etk_reduce_sum(x, 300, 1, sums);
}
static void shared_race_between_steps(void* unused) {
    float x[300] = {0}, sums[2];
    etk_reduce_sum(x, 300, 2, sums);
}
static void partial_barrier(void* unused) {
    static float out[1024];
    etk_barrier_rotate((EtkDim){1, 1, 1}, (EtkDim){1024, 1, 1}, 1000, out);
}
static void stack_overflow(void* unused) { etk_stack_overflow(); }
static void wild_pointer(void* unused) { etk_wild_pointer(); }
static void trap_then_copy(void* sync_each_launch) {
    setenv("TIPCAP_CUDA_SYNC", sync_each_launch ? "1" : "0", 1);
    etk_trap_then_copy();
}
static void trap_sticky(void* unused) {
    int codes[5];
    etk_trap_sticky(codes);
    fprintf(stderr, "codes %d %d %d %d %d\n", codes[0], codes[1], codes[2], codes[3], codes[4]);
}
#endif

static void test_red_zones_catch_out_of_bounds_writes(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    expect_report(oob_after_end, "write one past the end", "kernel 'oob_write_kernel'", "past the end");
    expect_report(oob_before_start, "write before the start", "kernel 'oob_write_kernel'", "before the start");
    expect_report(oob_far_after_end, "write 50 floats past the end", "oob_write_kernel", "past the end");
    expect_report(oob_dynamic_shared, "dynamic shared memory", "oob_dynamic_shared_kernel",
                  "dynamic shared memory");
    expect_report(tiled_store_past_end, "tiled kernel storing row M", "tiled_matmul_kernel", "past the end");
    expect_report(host_writes_past_device_buffer, "host code writing past a device buffer",
                  "host code (through a device pointer, before kernel 'barrier_rotate_kernel')", "past the end");
#endif
}

// The device profiles: every architecture the build runs on, the newest (sm_120) through the PTX;
// the device described by one profile, and by "all" the most restrictive of them.
static void test_device_profiles(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    const char* all = etk_device_profiles();
    CHECK(strstr(all, "sm_86") && strstr(all, "sm_120"), "the build runs on \"%s\": sm_86 (sm_80 SASS) and sm_120 "
          "(the PTX) missing", all);
    CHECK(etk_set_device("sm_75") == -1, "an unknown profile was accepted");
    int sms, warp, major;
    size_t per_block, optin;
    CHECK(etk_set_device("sm_90") == 0, "sm_90 refused");
    etk_device_properties(&sms, &per_block, &optin, &warp, &major);
    CHECK(major == 9 && optin == 227 * 1024 && sms == 132, "sm_90: sm_%d, %zu bytes opt-in, %d SMs", major, optin, sms);
    CHECK(etk_set_device("sm_86") == 0, "sm_86 refused");
    etk_device_properties(&sms, &per_block, &optin, &warp, &major);
    CHECK(major == 8 && optin == 99 * 1024, "sm_86: sm_%d, %zu bytes opt-in", major, optin);
    CHECK(etk_set_device("all") == 0, "all refused");
    etk_device_properties(&sms, &per_block, &optin, &warp, &major);
    CHECK(major == 8 && optin == 99 * 1024 && per_block == 48 * 1024, "all: sm_%d, %zu bytes opt-in, %zu per block",
          major, optin, per_block);
#endif
}

#ifndef TIPCAP_TEST_GPU
// A launch or cudaFuncSetAttribute that a device refuses prints one line naming the kernel, the
// limit and the device. Each case runs in a child process under one profile.
typedef struct {
    const char* profile;
    int limit;  // which refusal
} Refusal;
enum { REFUSE_THREADS, REFUSE_GRID, REFUSE_SHARED_NO_OPT_IN, REFUSE_SHARED_OVER_ATTRIBUTE, REFUSE_ATTRIBUTE_OVER_OPT_IN,
       REFUSE_REGISTERS, REFUSALS };
static void refused_call(void* arg) {
    const Refusal* r = (const Refusal*)arg;
    etk_set_device(r->profile);
    int ran, again;
    const size_t optin = device_optin(), fixed = 16 * 1024;
    switch (r->limit) {
        case REFUSE_THREADS: etk_launch_config((EtkDim){1, 1, 1}, (EtkDim){1025, 1, 1}, 0, -1, &ran, &again); break;
        case REFUSE_GRID: etk_launch_config((EtkDim){1, 65536, 1}, (EtkDim){32, 1, 1}, 0, -1, &ran, &again); break;
        case REFUSE_SHARED_NO_OPT_IN: etk_static_shared_launch(0, 48 * 1024 - fixed + 16); break;
        case REFUSE_SHARED_OVER_ATTRIBUTE:
            etk_static_shared_attribute(64 * 1024);
            etk_static_shared_launch(1, 64 * 1024 + 16);
            break;
        case REFUSE_ATTRIBUTE_OVER_OPT_IN: etk_static_shared_attribute((int)(optin - fixed + 16)); break;
        case REFUSE_REGISTERS: etk_register_heavy(1024); break;
    }
}
static void expect_refusal(const char* profile, int limit, const char* kernel, const char* what, const char* device) {
    char err[4096];
    Refusal r = {profile, limit};
    int status = run_captured(refused_call, &r, err, sizeof err);
    char want_device[32];
    snprintf(want_device, sizeof want_device, "refused on %s ", device);
    CHECK(status == 0 && strstr(err, "cuda-emu: kernel '") && strstr(err, kernel) && strstr(err, what) &&
              strstr(err, want_device),
          "profile %s: a refusal that names '%s', \"%s\" and %s: exit %d, stderr: %s", profile, kernel, what, device,
          status, err);
}
#endif

static void test_refusals_name_kernel_limit_and_device(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    const int have_ptxas = etk_register_heavy_registers("sm_80") >= 0;
    char profiles[MAX_PROFILES][16];
    int n = device_profiles(profiles);
    for (int k = 0; k < n; k++) {
        const char* p = profiles[k];
        expect_refusal(p, REFUSE_THREADS, "flag_kernel", "at most 1024 threads", p);
        expect_refusal(p, REFUSE_GRID, "flag_kernel", "grid (1,65536,1)", p);
        expect_refusal(p, REFUSE_SHARED_OVER_ATTRIBUTE, "static_shared_kernel<1>",
                       "exceed the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize of 65536", p);
        if (!have_ptxas) continue;
        expect_refusal(p, REFUSE_SHARED_NO_OPT_IN, "static_shared_kernel<0>", "16384 of static shared memory exceed", p);
        expect_refusal(p, REFUSE_ATTRIBUTE_OVER_OPT_IN, "static_shared_kernel<1>", "cudaDevAttrMaxSharedMemoryPerBlockOptin",
                       p);
        expect_refusal(p, REFUSE_REGISTERS, "register_heavy_kernel", "more than the 65536 of a block", p);
    }
    // every profile at once: each device that refuses is named. Over 99 KiB: sm_86, sm_89 and sm_120
    // refuse (sm_80 allows 163 KiB, sm_90 227 KiB).
    for (int k = 0; k < n; k++) expect_refusal("all", REFUSE_THREADS, "flag_kernel", "at most 1024 threads", profiles[k]);
    const char* small_optin[] = {"sm_86", "sm_89", "sm_120"};
    for (int k = 0; have_ptxas && k < 3; k++)
        expect_refusal("all", REFUSE_ATTRIBUTE_OVER_OPT_IN, "static_shared_kernel<1>", "101376 bytes", small_optin[k]);
    expect_report(dynamic_shared_over_declared, "more dynamic shared memory than declared", "shared_unwritten_kernel",
                  "more than the 16 its DYNAMIC_SHARED declares");
#endif
}

static void test_reports_of_broken_synchronisation(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    expect_report(divergent_barrier, "divergent __syncthreads", "divergent_barrier_kernel",
                  "divergent __syncthreads()");
    expect_report(barrier_deadlock, "shuffle with a lane at a barrier", "barrier_deadlock_kernel", "deadlock");
    expect_report(divergent_shuffle, "divergent shuffles", "divergent_shuffle_kernel", "divergent warp exchange");
    expect_report(mask_without_self, "mask without the caller", "mask_without_self_kernel",
                  "must name the calling lane");
    expect_report(stack_overflow, "runaway recursion", "stack_overflow_kernel", "stack overflow");
    expect_report(wild_pointer, "store through a wild pointer", "wild_pointer_kernel", "segmentation fault");
#endif
}

// A fault while a kernel runs surfaces at the next synchronising call, as on a GPU, under that
// call's name; TIPCAP_CUDA_SYNC=1 names the launch instead.
static void test_execution_errors_are_asynchronous_and_sticky(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    char err[4096];
    int status = run_captured(trap_then_copy, NULL, err, sizeof err);
    CHECK(status == 1, "trap: exit status %d, want 1 (stderr: %s)", status, err);
    CHECK(strstr(err, "__trap() at") && strstr(err, "block (1,0,0), thread (5,0,0)"),
          "trap: the emulation does not say where the trap was: %s", err);
    CHECK(strstr(err, "CUDA: unspecified launch failure\n") && !strstr(err, "etk_trap_then_copy()"),
          "trap without TIPCAP_CUDA_SYNC: want the fault at the copy after the launch: %s", err);
    status = run_captured(trap_then_copy, (void*)1, err, sizeof err);
    CHECK(status == 1 && strstr(err, "unspecified launch failure while running the work launched in "
                                     "etk_trap_then_copy() (TIPCAP_CUDA_SYNC=1)"),
          "trap with TIPCAP_CUDA_SYNC=1: want the fault at the launch site: status %d: %s", status, err);
    status = run_captured(trap_sticky, NULL, err, sizeof err);
    CHECK(status == 0 && strstr(err, "codes 0 719 719 719 719"),
          "after a trap: want success at the launch, then cudaErrorLaunchFailure (719) from the sync, "
          "cudaGetLastError, the next launch and cudaMemcpy: status %d: %s", status, err);
#endif
}

static void test_race_barrier_and_initialisation_checks(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    for (int v = 0; v < 8; v += 2) CHECK(etk_check_case(v) == 0, "correct case %d failed", v);
    expect_report(shared_race_after_store, "reduction missing the barrier after its store", "reduce_kernel<1>",
                  "race on static __shared__");
    expect_report(shared_race_between_steps, "reduction missing the barrier between steps", "reduce_kernel<2>",
                  "race on static __shared__");
    expect_report(check_case_1, "global write read without a barrier", "global_race_kernel", "reads it while thread (0,0,0) wrote");
    expect_report(check_case_3, "two blocks writing one word", "global_race_kernel",
                  "a thread of another block of this launch wrote it");
    expect_report(check_case_5, "read of memory nothing wrote", "global_race_kernel", "which nothing has written");
    expect_report(partial_barrier, "barrier after 24 threads exited", "barrier_rotate_kernel",
                  "reached by part of the block");
    expect_report(check_case_7, "shuffle naming exited lanes", "global_race_kernel",
                  "names lanes 0xffff0000 that have exited");
#endif
}

#ifndef TIPCAP_TEST_GPU
// Relative error of block sums of x against double sums.
static double reduce_error(const float* x, int n, int variant) {
    int blocks = (n + 255) / 256;
    float* sums = mallocCheck((size_t)blocks * sizeof(float));
    float* want = mallocCheck((size_t)blocks * sizeof(float));
    CHECK(etk_reduce_sum(x, n, variant, sums) == 0, "launch failed");
    for (int b = 0; b < blocks; b++) {
        double s = 0;
        for (int i = b * 256; i < n && i < (b + 1) * 256; i++) s += x[i];
        want[b] = (float)s;
    }
    double err = rel_err(sums, want, (size_t)blocks);
    free(sums);
    free(want);
    return err;
}
static double tiled_error(int variant) {
    int M = 29, N = 45, K = 37;
    float *A = mallocCheck(sizeof(float) * M * K), *B = mallocCheck(sizeof(float) * K * N),
          *C = mallocCheck(sizeof(float) * M * N), *want = mallocCheck(sizeof(float) * M * N);
    for (int i = 0; i < M * K; i++) A[i] = normal();
    for (int i = 0; i < K * N; i++) B[i] = normal();
    CHECK(etk_tiled_matmul(A, B, C, M, N, K, variant) == 0, "launch failed");
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)A[r * K + k] * B[k * N + c];
            want[r * N + c] = (float)s;
        }
    double err = rel_err(C, want, (size_t)M * N);
    free(A);
    free(B);
    free(C);
    free(want);
    return err;
}
static void check_harness_catches_bugs(const char* mode) {
    int n = 256 * 5 + 77;
    float* x = mallocCheck((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) x[i] = normal();
    double ok = reduce_error(x, n, 0);
    CHECK(ok < 1e-5, "%s: the correct reduction is off by %.3g", mode, ok);
    double e1 = reduce_error(x, n, 1), e2 = reduce_error(x, n, 2);
    CHECK(e1 > 1e-3, "%s: a reduction missing the __syncthreads() after its shared store went unnoticed "
          "(relative error %.3g)", mode, e1);
    CHECK(e2 > 1e-3, "%s: a reduction missing the __syncthreads() between its steps went unnoticed "
          "(relative error %.3g)", mode, e2);
    double t0 = tiled_error(0), t1 = tiled_error(1);
    CHECK(t0 < 1e-5, "%s: the correct tiled matmul is off by %.3g", mode, t0);
    CHECK(t1 > 1e-3, "%s: a tiled matmul dropping its last partial tile went unnoticed (relative error %.3g)", mode, t1);
    free(x);
}
#endif

static void test_harness_catches_missing_barrier_and_tile_bound(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    set_checks(0);  // the comparison alone, as without the checks (which report these bugs, above)
    check_harness_catches_bugs("in order");
    etk_set_shuffle(test_seed() | 1);
    check_harness_catches_bugs("shuffle mode");
    etk_set_shuffle(0);
    set_checks(1);
#endif
}

static void test_shuffle_mode(void) {
    EMULATION_ONLY();
#ifndef TIPCAP_TEST_GPU
    int T = 256, order[256], again[256];
    etk_set_shuffle(0);
    CHECK(etk_arrival_order(T, order) == 0, "launch failed");
    int identity = 1;
    for (int t = 0; t < T; t++) identity &= order[t] == t;
    CHECK(identity, "without shuffle mode the threads of a block do not pass in order");
    uint64_t seed = test_seed() | 1;
    etk_set_shuffle(seed);
    CHECK(etk_arrival_order(T, order) == 0, "launch failed");
    etk_set_shuffle(seed);
    CHECK(etk_arrival_order(T, again) == 0, "launch failed");
    identity = 1;
    int same = 1;
    for (int t = 0; t < T; t++) {
        identity &= order[t] == t;
        same &= order[t] == again[t];
    }
    CHECK(!identity, "shuffle mode left the threads in order");
    CHECK(same, "shuffle mode with the same seed gave another order");
    // correct kernels stay correct
    set_checks(0);  // 6 threads per block exit before the barriers
    check_rotate((EtkDim){3, 2, 1}, (EtkDim){8, 4, 3}, 90);
    set_checks(1);
    for (int op = 0; op < 4; op++) check_shuffle(op, 0, 64, 0xffffffffu, 16);
    etk_set_shuffle(0);
#endif
}

int main(void) {
    rng = test_seed();
    RUN(test_barrier_identity);
    RUN(test_barrier_reductions);
    RUN(test_shared_memory_per_block);
    RUN(test_dynamic_shared_memory);
    RUN(test_unwritten_shared_is_poisoned);
    RUN(test_local_arrays);
    RUN(test_shuffles);
    RUN(test_votes);
    RUN(test_syncwarp);
    RUN(test_atomics);
    RUN(test_more_atomics);
    RUN(test_bf16_from_float);
    RUN(test_bf16_to_float_and_pairs);
    RUN(test_bf16_from_double);
    RUN(test_bf16_arithmetic);
    RUN(test_launch_configuration_errors);
    RUN(test_static_shared_memory_counts);
    RUN(test_registers_per_block);
    RUN(test_device_profiles);
    RUN(test_refusals_name_kernel_limit_and_device);
    RUN(test_memory_and_device_api);
    RUN(test_cublas_gemm);
    RUN(test_cublaslt_epilogues);
    RUN(test_cublaslt_refusals);
    RUN(test_red_zones_catch_out_of_bounds_writes);
    RUN(test_reports_of_broken_synchronisation);
    RUN(test_execution_errors_are_asynchronous_and_sticky);
    RUN(test_race_barrier_and_initialisation_checks);
    RUN(test_harness_catches_missing_barrier_and_tile_bound);
    RUN(test_shuffle_mode);
    return test_summary();
}
