// The Gaussian mapping's sampling, x = normalize(t + mu + L z): 100,000 samples have the
// covariance Sigma = L L^T (before the normalisation, y = x * norm) within 2% relative Frobenius
// error on the CPU and through the CUDA kernels (under the emulation in `make test`, on a GPU in
// `make test-gpu`); the CUDA forward and backward equal the CPU reference on odd shapes, with
// the upper triangle of L ignored and the accumulating gradients accumulated.
// (The CPU backward against finite differences in double precision: tests/test_gradcheck.c.)
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/timer.h"
#include "kernels/backend.h"
#include "kernels/cholesky.h"
#include "kernels/gap_sample.h"
#include "kernels/philox.h"
#include "tests/harness.h"

static Backend* cuda_backend(void) {
    static Backend* be;
    static int tried;
    if (!tried) be = backend_cuda_create(DTYPE_F32), tried = 1;
    return be;
}

static float* randn(size_t n, double scale, uint64_t stream) {
    float* x = mallocCheck(sizeof(float) * (n ? n : 1));
    for (size_t k = 0; k < n; k++) x[k] = (float)(scale * philox_normal(test_seed(), stream, k));
    return x;
}

static float* poisoned(size_t n) {
    float* x = mallocCheck(sizeof(float) * (n ? n : 1));
    for (size_t k = 0; k < n; k++) x[k] = NAN;
    return x;
}

static float* up(Backend* be, const float* host, size_t n) {
    float* d = be->alloc(be, sizeof(float) * (n ? n : 1));
    if (n) be->upload(be, d, host, sizeof(float) * n);
    return d;
}
static void down(Backend* be, float* host, const float* dev, size_t n) {
    if (n) be->download(be, host, dev, sizeof(float) * n);
}

// An anisotropic Sigma = Q diag(0.02 * 0.8^i) Q^T (effective rank about 9) and its Cholesky factor.
static void make_sigma(int D, double* sigma, float* L) {
    double* Q = mallocCheck(sizeof(double) * D * D);
    double* R = mallocCheck(sizeof(double) * D * D);
    for (int k = 0; k < D * D; k++) Q[k] = philox_normal(test_seed(), 7, k);
    // Gram-Schmidt on the rows
    for (int i = 0; i < D; i++) {
        for (int j = 0; j < i; j++) {
            double d = cblas_ddot(D, Q + i * D, 1, Q + j * D, 1);
            cblas_daxpy(D, -d, Q + j * D, 1, Q + i * D, 1);
        }
        cblas_dscal(D, 1.0 / cblas_dnrm2(D, Q + i * D, 1), Q + i * D, 1);
    }
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) R[i * D + j] = Q[i * D + j] * sqrt(0.02 * pow(0.8, i));
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, D, D, D, 1.0, R, D, R, D, 0.0, sigma, D);
    float* sf = mallocCheck(sizeof(float) * D * D);
    for (int k = 0; k < D * D; k++) sf[k] = (float)sigma[k];
    char err[256];
    if (cholesky_f32_cpu(L, sf, D, NULL, NULL, err, sizeof err)) FATAL("%s", err);
    free(Q);
    free(R);
    free(sf);
}

// Relative Frobenius error of the sample covariance of y = x * norm against sigma, and the
// error of the sample mean against mu (relative to sqrt(tr Sigma)).
static void sample_errors(const float* x, const float* norm, int B, int D, const double* sigma, const float* mu,
                          double* cov_err, double* mean_err) {
    double* y = mallocCheck(sizeof(double) * B * D);
    double* mean = callocCheck(D, sizeof(double));
    double* cov = callocCheck((size_t)D * D, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) {
            y[(size_t)b * D + i] = (double)x[(size_t)b * D + i] * norm[b];
            mean[i] += y[(size_t)b * D + i] / B;
        }
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) y[(size_t)b * D + i] -= mean[i];
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, D, B, 1.0 / (B - 1), y, D, 0.0, cov, D);
    double num = 0, den = 0, m2 = 0, tr = 0;
    for (int i = 0; i < D; i++) {
        for (int j = 0; j < D; j++) {
            double c = j <= i ? cov[i * D + j] : cov[j * D + i];
            num += (c - sigma[i * D + j]) * (c - sigma[i * D + j]);
            den += sigma[i * D + j] * sigma[i * D + j];
        }
        m2 += (mean[i] - mu[i]) * (mean[i] - mu[i]);
        tr += sigma[i * D + i];
    }
    *cov_err = sqrt(num / den);
    *mean_err = sqrt(m2 / tr);
    free(y);
    free(mean);
    free(cov);
}

// 100,000 samples with t = 0: y = mu + L z has covariance Sigma. The expected relative error is
// sqrt((1 + r) / N) with r the effective rank (about 9 here): 1%; the bound is 2%.
static void check_covariance(int use_cuda) {
    int D = 32, B = 100000;
    double* sigma = mallocCheck(sizeof(double) * D * D);
    float* L = mallocCheck(sizeof(float) * D * D);
    make_sigma(D, sigma, L);
    float* mu = randn(D, 0.05, 8);
    float* t = callocCheck((size_t)B * D, sizeof(float));
    float* x = poisoned((size_t)B * D);
    float* z = poisoned((size_t)B * D);
    float* norm = poisoned(B);
    double t0 = timer_now();
    if (use_cuda) {
        Backend* be = cuda_backend();
        float *dx = up(be, x, (size_t)B * D), *dz = up(be, z, (size_t)B * D), *dn = up(be, norm, B);
        float *dt = up(be, t, (size_t)B * D), *dmu = up(be, mu, D), *dL = up(be, L, (size_t)D * D);
        gap_sample_forward_cuda(dx, dz, dn, dt, dmu, dL, B, D, 42, 3, 0);
        down(be, x, dx, (size_t)B * D);
        down(be, z, dz, (size_t)B * D);
        down(be, norm, dn, B);
        be->free(be, dx), be->free(be, dz), be->free(be, dn), be->free(be, dt), be->free(be, dmu), be->free(be, dL);
    } else {
        gap_sample_forward_cpu(x, z, norm, t, mu, L, B, D, 42, 3, 0);
    }
    double secs = timer_now() - t0;
    double cov_err, mean_err;
    sample_errors(x, norm, B, D, sigma, mu, &cov_err, &mean_err);
    printf("  %s: %d samples, D = %d: ||Cov(y) - Sigma||/||Sigma|| = %.4f, ||mean - mu|| / sqrt(tr Sigma) = %.4f (%.2f s)\n",
           use_cuda ? "cuda" : "cpu", B, D, cov_err, mean_err, secs);
    CHECK(cov_err < 0.02, "%s: covariance error %.4f >= 2%%", use_cuda ? "cuda" : "cpu", cov_err);
    CHECK(mean_err < 4 / sqrt((double)B), "%s: mean error %.4g", use_cuda ? "cuda" : "cpu", mean_err);
    // x is unit-norm; z is the shared Philox stream
    double worst_unit = 0;
    int z_ok = 1;
    for (int b = 0; b < B; b++) {
        double s = 0;
        for (int i = 0; i < D; i++) s += (double)x[(size_t)b * D + i] * x[(size_t)b * D + i];
        worst_unit = fmax(worst_unit, fabs(s - 1));
    }
    for (int k = 0; k < 1000; k++) z_ok &= z[k * 97] == philox_normal(42, 3, (uint64_t)k * 97);
    CHECK(worst_unit < 1e-5, "||x|| - 1 up to %.3g", worst_unit);
    CHECK(z_ok, "z is not philox_normal(seed, stream, b * D + d)");
    free(sigma);
    free(L);
    free(mu);
    free(t);
    free(x);
    free(z);
    free(norm);
}

static void test_cpu_covariance_100k(void) { check_covariance(0); }
static void test_cuda_covariance_100k(void) {
    NEED_GPU(cuda_backend());
    check_covariance(1);
}

// CUDA forward and backward against the CPU reference. L's upper triangle holds NaN, which
// neither may read; dmu and dL start from random values (+=), dL's upper triangle must stay.
static void check_shape(int B, int D, uint64_t row0, int with_dt) {
    Backend* be = cuda_backend();
    size_t n = (size_t)B * D, nl = (size_t)D * D;
    float* t = randn(n, 1.0 / sqrt((double)D), 20);
    float* mu = randn(D, 0.1 / sqrt((double)D), 21);
    float* L = randn(nl, 0.3 / sqrt((double)D), 22);
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++) L[i * D + j] = NAN;
    float* dx = randn(n, 1, 23);
    float* dmu0 = randn(D, 1, 24);
    float* dL0 = randn(nl, 1, 25);
    // CPU
    float *x = poisoned(n), *z = poisoned(n), *norm = poisoned(B), *dt = poisoned(n);
    float* dmu = mallocCheck(sizeof(float) * D);
    float* dL = mallocCheck(sizeof(float) * nl);
    memcpy(dmu, dmu0, sizeof(float) * D);
    memcpy(dL, dL0, sizeof(float) * nl);
    gap_sample_forward_cpu(x, z, norm, t, mu, L, B, D, 11, 5, row0);
    gap_sample_backward_cpu(with_dt ? dt : NULL, dmu, dL, dx, x, z, norm, B, D);
    // CUDA
    float *gx = poisoned(n), *gz = poisoned(n), *gnorm = poisoned(B), *gdt = poisoned(n);
    float *gdmu = poisoned(D), *gdL = poisoned(nl);
    float *d_x = up(be, gx, n), *d_z = up(be, gz, n), *d_norm = up(be, gnorm, B), *d_dt = up(be, gdt, n);
    float *d_t = up(be, t, n), *d_mu = up(be, mu, D), *d_L = up(be, L, nl), *d_dx = up(be, dx, n);
    float *d_dmu = up(be, dmu0, D), *d_dL = up(be, dL0, nl), *d_scratch = up(be, gdt, n);
    gap_sample_forward_cuda(d_x, d_z, d_norm, d_t, d_mu, d_L, B, D, 11, 5, row0);
    gap_sample_backward_cuda(with_dt ? d_dt : NULL, d_dmu, d_dL, d_dx, d_x, d_z, d_norm, B, D, d_scratch);
    down(be, gx, d_x, n);
    down(be, gz, d_z, n);
    down(be, gnorm, d_norm, B);
    down(be, gdt, with_dt ? d_dt : d_scratch, n);
    down(be, gdmu, d_dmu, D);
    down(be, gdL, d_dL, nl);
    double ex = rel_err(gx, x, n), ez = rel_err(gz, z, n), en = rel_err(gnorm, norm, B);
    double edt = with_dt ? rel_err(gdt, dt, n) : 0, edmu = rel_err(gdmu, dmu, D), edL = rel_err(gdL, dL, nl);
    printf("  B=%d D=%d row0=%llu%s: x %.1e z %.1e norm %.1e dt %.1e dmu %.1e dL %.1e\n", B, D, (unsigned long long)row0,
           with_dt ? "" : " (dt NULL)", ex, ez, en, edt, edmu, edL);
    CHECK(ex < 1e-5 && en < 1e-5, "B=%d D=%d: forward differs: x %.3g norm %.3g", B, D, ex, en);
    CHECK(ez < 1e-6, "B=%d D=%d: z differs from the CPU's: %.3g", B, D, ez);
    CHECK(edt < 1e-5 && edmu < 1e-5 && edL < 1e-5, "B=%d D=%d: backward differs: dt %.3g dmu %.3g dL %.3g", B, D, edt,
          edmu, edL);
    int upper_ok = 1;
    for (int i = 0; i < D; i++)
        for (int j = i + 1; j < D; j++) upper_ok &= gdL[i * D + j] == dL0[i * D + j];
    CHECK(upper_ok, "B=%d D=%d: the upper triangle of dL changed", B, D);
    float* bufs[] = {d_x, d_z, d_norm, d_dt, d_t, d_mu, d_L, d_dx, d_dmu, d_dL, d_scratch};
    for (int k = 0; k < 11; k++) be->free(be, bufs[k]);
    float* hosts[] = {t, mu, L, dx, dmu0, dL0, x, z, norm, dt, dmu, dL, gx, gz, gnorm, gdt, gdmu, gdL};
    for (int k = 0; k < 18; k++) free(hosts[k]);
}

static void test_cuda_matches_cpu(void) {
    NEED_GPU(cuda_backend());
    check_shape(1, 1, 0, 1);
    check_shape(3, 37, 17, 1);
    check_shape(70, 100, 0, 0);
    check_shape(65, 130, 5, 1);
    check_shape(40, 512, 123456, 1);
}

int main(void) {
    test_seed();
    RUN(test_cpu_covariance_100k);
    RUN(test_cuda_covariance_100k);
    RUN(test_cuda_matches_cpu);
    return test_summary();
}
