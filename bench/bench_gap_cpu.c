// CPU side of the modality gap: Cholesky through the policy (validation + LAPACKE) against bare
// LAPACKE spotrf/dpotrf, the estimators at CLIP's D = 512 on realistic pair counts, the KL term
// of the learnable Gaussian, and the CPU reference of the sampling. Results in bench/RESULTS.md.
//   bin/bench/bench_gap_cpu [repeats]
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/timer.h"
#include "data/gap.h"
#include "kernels/cholesky.h"
#include "kernels/gap_sample.h"
#include "kernels/philox.h"

static float* randn(size_t n, double scale, uint64_t stream) {
    float* x = mallocCheck(sizeof(float) * n);
    for (size_t k = 0; k < n; k++) x[k] = (float)(scale * philox_normal(1, stream, k));
    return x;
}

// A = B B^T / D + I / 4 in double and float.
static void spd(int D, double* A, float* Af) {
    float* B = randn((size_t)D * D, 1, 100 + D);
    for (int i = 0; i < D; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int k = 0; k < D; k++) s += (double)B[i * D + k] * B[j * D + k];
            A[i * D + j] = A[j * D + i] = s / D + (i == j ? 0.25 : 0.0);
            Af[i * D + j] = Af[j * D + i] = (float)A[i * D + j];
        }
    free(B);
}

static void bench_cholesky(int D, int reps) {
    double* A = mallocCheck(sizeof(double) * D * D);
    float* Af = mallocCheck(sizeof(float) * D * D);
    double* L = mallocCheck(sizeof(double) * D * D);
    float* Lf = mallocCheck(sizeof(float) * D * D);
    spd(D, A, Af);
    char err[256];
    double t_ours32 = 0, t_lapack32 = 0, t_ours64 = 0, t_lapack64 = 0;
    for (int r = -1; r < reps; r++) {
        double t0 = timer_now();
        if (cholesky_f32_cpu(Lf, Af, D, NULL, NULL, err, sizeof err)) FATAL("%s", err);
        double t1 = timer_now();
        memcpy(Lf, Af, sizeof(float) * D * D);
        double t2 = timer_now();
        LAPACKE_spotrf(LAPACK_COL_MAJOR, 'U', D, Lf, D);
        double t3 = timer_now();
        if (cholesky_f64_cpu(L, A, D, NULL, NULL, err, sizeof err)) FATAL("%s", err);
        double t4 = timer_now();
        memcpy(L, A, sizeof(double) * D * D);
        double t5 = timer_now();
        LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', D, L, D);
        double t6 = timer_now();
        if (r >= 0) t_ours32 += t1 - t0, t_lapack32 += t3 - t2, t_ours64 += t4 - t3, t_lapack64 += t6 - t5;
    }
    printf("cholesky D=%4d: fp32 policy %7.3f ms vs bare spotrf %7.3f ms (x%.2f); fp64 policy %7.3f ms vs bare dpotrf "
           "%7.3f ms (x%.2f)\n",
           D, 1e3 * t_ours32 / reps, 1e3 * t_lapack32 / reps, t_ours32 / t_lapack32, 1e3 * t_ours64 / reps,
           1e3 * t_lapack64 / reps, t_ours64 / t_lapack64);
    free(A), free(Af), free(L), free(Lf);
}

// Pairs v = t + g with an anisotropic g, 30% of them mismatched for the web estimator.
static void bench_estimators(int D, int n) {
    float* t = randn((size_t)n * D, 1 / sqrt((double)D), 1);
    float* v = randn((size_t)n * D, 0.5 / sqrt((double)D), 2);
    for (size_t k = 0; k < (size_t)n * D; k++) v[k] = v[k] * (float)(1 + (k % D) * 0.01) + t[k];
    int64_t* image_of = mallocCheck(sizeof(int64_t) * n);
    for (int k = 0; k < n; k++) image_of[k] = philox_uniform(1, 3, k) < 0.3 ? (k + 1 + k % 97) % n : k;
    GapRows pairs = {v, NULL, t, NULL, n}, web = {v, image_of, t, NULL, n};
    GapRows images = {v, NULL, NULL, NULL, n / 2}, texts = {t + (size_t)(n / 2) * D, NULL, NULL, NULL, n - n / 2};
    GapEstimate g;
    char err[512];
    double t0 = timer_now();
    if (gap_estimate_paired(&g, &pairs, D, NULL, err, sizeof err)) FATAL("%s", err);
    double t1 = timer_now();
    gap_free(&g);
    if (gap_estimate_web(&g, &web, D, NULL, NULL, err, sizeof err)) FATAL("%s", err);
    double t2 = timer_now();
    long long rejected = g.n_rejected;
    gap_free(&g);
    if (gap_estimate_unpaired(&g, &images, &texts, D, NULL, err, sizeof err)) FATAL("%s", err);
    double t3 = timer_now();
    printf("estimators D=%d, %d pairs: paired %.2f s, web (30%% mismatched, %lld rejected) %.2f s, unpaired "
           "(%d + %d) %.2f s\n",
           D, n, t1 - t0, rejected, t2 - t1, n / 2, n - n / 2, t3 - t2);
    // KL of the learnable Gaussian at the estimate (with gradients), per call
    GapPrior prior;
    if (gap_prior_init(&prior, &g, err, sizeof err)) FATAL("%s", err);
    float* dmu = callocCheck(D, sizeof(float));
    float* dL = callocCheck((size_t)D * D, sizeof(float));
    double t4 = timer_now();
    int reps = 10;
    for (int r = 0; r < reps; r++) gap_kl(&prior, g.mu, g.chol, 1e-3f, dmu, dL);
    printf("KL(N(mu, LL^T) || prior) with gradients, D=%d: %.2f ms per call\n", D, 1e3 * (timer_now() - t4) / reps);
    gap_prior_free(&prior);
    gap_free(&g);
    free(dmu), free(dL), free(t), free(v), free(image_of);
}

static void bench_sampling(int B, int D, int reps) {
    float* t = randn((size_t)B * D, 0.05, 4);
    float* mu = randn(D, 0.01, 5);
    float* L = randn((size_t)D * D, 0.01, 6);
    float* dx = randn((size_t)B * D, 1, 7);
    float* x = mallocCheck(sizeof(float) * B * D);
    float* z = mallocCheck(sizeof(float) * B * D);
    float* norm = mallocCheck(sizeof(float) * B);
    float* dt = mallocCheck(sizeof(float) * B * D);
    float* dmu = callocCheck(D, sizeof(float));
    float* dL = callocCheck((size_t)D * D, sizeof(float));
    double f = 0, b = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = timer_now();
        gap_sample_forward_cpu(x, z, norm, t, mu, L, B, D, 1, 0, (uint64_t)r * B);
        double t1 = timer_now();
        gap_sample_backward_cpu(dt, dmu, dL, dx, x, z, norm, B, D);
        double t2 = timer_now();
        f += t1 - t0, b += t2 - t1;
    }
    double flops = (double)B * D * D;
    printf("sampling CPU B=%d D=%d: forward %.2f ms (%.2f GFLOP/s), backward %.2f ms (%.2f GFLOP/s)\n", B, D,
           1e3 * f / reps, flops / (f / reps) * 1e-9, 1e3 * b / reps, flops / (b / reps) * 1e-9);
    free(t), free(mu), free(L), free(dx), free(x), free(z), free(norm), free(dt), free(dmu), free(dL);
}

int main(int argc, char** argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 10;
    int sizes[] = {512, 768, 1024};
    for (int s = 0; s < 3; s++) bench_cholesky(sizes[s], reps);
    bench_estimators(512, 25000);
    bench_sampling(40, 512, reps);
    bench_sampling(1024, 512, 3);
    return 0;
}
