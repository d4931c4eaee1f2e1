// CPU reference of the incremental-decoding ops (see decode.h): fp32, OpenMP over rows and heads.
#include "kernels/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"

// Same arithmetic and order as attention_forward_cpu (attention_cpu.inc): scores, max, exp, sum,
// then the probability-weighted values, so that chunked decoding reproduces the full pass.
void attention_forward_cached_cpu(float* out, const float* qkv, float* kcache, float* vcache, int past, int B, int Tn,
                                  int Tmax, int C, int H) {
    attention_cached_check_shape("attention_forward_cached_cpu", past, B, Tn, Tmax, C, H);
    const int hs = C / H;
    const float scale = 1.0f / sqrtf((float)hs);
    const int n_max = past + Tn;
#pragma omp parallel
    {
        float* scores = (float*)mallocCheck((size_t)(n_max > 0 ? n_max : 1) * sizeof(float));  // [past+Tn]
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < H; h++) {
                // this (row, head)'s slice of the cache is only touched by this iteration
                const float* tokens = qkv + (size_t)b * Tn * 3 * C;            // [Tn,3C]
                float* kc = kcache + (size_t)b * Tmax * C + h * hs;             // [Tmax,C] at head h
                float* vc = vcache + (size_t)b * Tmax * C + h * hs;
                for (int i = 0; i < Tn; i++) {
                    memcpy(kc + (size_t)(past + i) * C, tokens + (size_t)i * 3 * C + C + h * hs, hs * sizeof(float));
                    memcpy(vc + (size_t)(past + i) * C, tokens + (size_t)i * 3 * C + 2 * C + h * hs,
                           hs * sizeof(float));
                }
                for (int i = 0; i < Tn; i++) {
                    const float* q = tokens + (size_t)i * 3 * C + h * hs;
                    float* o = out + ((size_t)b * Tn + i) * C + h * hs;
                    const int n = past + i + 1;
                    float max = -INFINITY;
                    for (int j = 0; j < n; j++) {
                        const float* k = kc + (size_t)j * C;
                        float dot = 0;
                        for (int d = 0; d < hs; d++) dot += q[d] * k[d];
                        scores[j] = scale * dot;
                        if (scores[j] > max) max = scores[j];
                    }
                    float sum = 0;
                    for (int j = 0; j < n; j++) {
                        scores[j] = expf(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int d = 0; d < hs; d++) o[d] = 0;
                    for (int j = 0; j < n; j++) {
                        const float* v = vc + (size_t)j * C;
                        const float p = scores[j] / sum;
                        for (int d = 0; d < hs; d++) o[d] += p * v[d];
                    }
                }
            }
        }
        free(scores);
    }
}

void rows_gather_cpu(void* dst, const void* src, const int* idx, int n, size_t row_bytes) {
    if (n < 0) FATAL("rows_gather_cpu: n=%d rows", n);
#pragma omp parallel for schedule(static) if ((size_t)n * row_bytes > (1u << 20))
    for (int i = 0; i < n; i++)
        memcpy((char*)dst + (size_t)i * row_bytes, (const char*)src + (size_t)idx[i] * row_bytes, row_bytes);
}

// a ranks before b: the larger logit, then the smaller id
static inline int topk_before(float va, int ia, float vb, int ib) { return va > vb || (va == vb && ia < ib); }

void logsoftmax_topk_cpu(float* values, int* ids, const float* logits, int N, int V, int Vp, int k) {
    logsoftmax_topk_check_shape("logsoftmax_topk_cpu", N, V, Vp, k);
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float* z = logits + (size_t)r * Vp;
        float* top_v = values + (size_t)r * k;  // sorted best first; the first `filled` are set
        int* top_id = ids + (size_t)r * k;
        int filled = 0;
        float max = -INFINITY;
        for (int j = 0; j < V; j++) {
            if (z[j] > max) max = z[j];
            // ids come in increasing order, so an equal logit never displaces an earlier id
            if (filled == k && !topk_before(z[j], j, top_v[k - 1], top_id[k - 1])) continue;
            int pos = filled < k ? filled++ : k - 1;
            while (pos > 0 && topk_before(z[j], j, top_v[pos - 1], top_id[pos - 1])) {
                top_v[pos] = top_v[pos - 1];
                top_id[pos] = top_id[pos - 1];
                pos--;
            }
            top_v[pos] = z[j];
            top_id[pos] = j;
        }
        // in double (a float running sum over a 50k vocabulary would lose ~1e-5), in eight
        // independent partial sums so that the additions do not wait on each other
        double part[8] = {0};
        int j = 0;
        for (; j + 8 <= V; j += 8)
            for (int u = 0; u < 8; u++) part[u] += expf(z[j + u] - max);
        for (; j < V; j++) part[0] += expf(z[j] - max);
        const double sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        const float lse = max + (float)log(sum);
        for (int q = 0; q < k; q++) top_v[q] -= lse;
    }
}

void attention_forward_cached_backend_cpu(Backend* be, void* out, const void* qkv, void* kcache, void* vcache,
                                          int past, int B, int Tn, int Tmax, int C, int H) {
    attention_forward_cached_cpu((float*)out, (const float*)qkv, (float*)kcache, (float*)vcache, past, B, Tn, Tmax,
                                 C, H);
}

void rows_gather_backend_cpu(Backend* be, void* dst, const void* src, const int* idx, int n, size_t row) {
    rows_gather_cpu(dst, src, idx, n, row * sizeof(float));
}

void logsoftmax_topk_backend_cpu(Backend* be, float* values, int* ids, const void* logits, int N, int V, int Vp,
                                 int k) {
    logsoftmax_topk_cpu(values, ids, (const float*)logits, N, V, Vp, k);
}
