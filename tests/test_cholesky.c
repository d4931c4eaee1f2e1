// Cholesky: LAPACKE on the CPU, the blocked and batched CUDA kernels (under the emulation in
// `make test`, on a real GPU in `make test-gpu`), and the policy: jitter with a warning,
// errors past the limit, on NaN and on asymmetry, never a NaN factor.
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "common/timer.h"
#include "kernels/backend.h"
#include "kernels/cholesky.h"
#include "kernels/philox.h"
#include "tests/harness.h"

// ---------------------------------------------------------------- matrices

// Random SPD matrix in double: A = B B^T / D + shift I, B [D,D] standard normal, rounded to
// float (exactly symmetric). Its spectrum spreads over [shift, 4 + shift].
static float* random_spd(int D, double shift, uint64_t stream) {
    double* B = mallocCheck(sizeof(double) * D * D);
    double* A = callocCheck((size_t)D * D, sizeof(double));
    for (size_t k = 0; k < (size_t)D * D; k++) B[k] = philox_normal(test_seed(), stream, k);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, D, D, 1.0 / D, B, D, 0.0, A, D);
    float* Af = mallocCheck(sizeof(float) * D * D);
    for (int i = 0; i < D; i++)
        for (int j = 0; j <= i; j++) Af[i * D + j] = Af[j * D + i] = (float)(A[i * D + j] + (i == j ? shift : 0));
    free(B);
    free(A);
    return Af;
}

// Positive semidefinite of rank D / 2: not positive definite, fixable by a little jitter.
static float* rank_deficient(int D, uint64_t stream) {
    int r = D / 2;
    double* B = mallocCheck(sizeof(double) * D * r);
    double* A = callocCheck((size_t)D * D, sizeof(double));
    for (size_t k = 0; k < (size_t)D * r; k++) B[k] = philox_normal(test_seed(), stream, k);
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, D, r, 1.0 / r, B, r, 0.0, A, D);
    float* Af = mallocCheck(sizeof(float) * D * D);
    for (int i = 0; i < D; i++)
        for (int j = 0; j <= i; j++) Af[i * D + j] = Af[j * D + i] = (float)A[i * D + j];
    free(B);
    free(A);
    return Af;
}

// ||L L^T - (A + jitter I)||_F / ||A + jitter I||_F in double; infinite if L has a non-finite
// entry or a non-zero upper triangle.
static double factor_error(const float* L, const float* A, int D, double jitter) {
    double* Ld = mallocCheck(sizeof(double) * D * D);
    double* P = callocCheck((size_t)D * D, sizeof(double));
    for (size_t k = 0; k < (size_t)D * D; k++) {
        if (!isfinite(L[k]) || (k % D > k / D && L[k] != 0)) {
            free(Ld);
            free(P);
            return INFINITY;
        }
        Ld[k] = L[k];
    }
    cblas_dsyrk(CblasRowMajor, CblasLower, CblasNoTrans, D, D, 1.0, Ld, D, 0.0, P, D);
    double num = 0, den = 0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double a = A[i * D + j] + (i == j ? jitter : 0);
            double p = j <= i ? P[i * D + j] : P[j * D + i];
            num += (p - a) * (p - a);
            den += a * a;
        }
    free(Ld);
    free(P);
    return sqrt(num / den);
}

static float* poisoned(size_t n) {
    float* x = mallocCheck(sizeof(float) * n);
    for (size_t k = 0; k < n; k++) x[k] = NAN;
    return x;
}

static int all_zero(const float* x, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (x[k] != 0.0f) return 0;
    return 1;
}

// ---------------------------------------------------------------- the implementations under test

typedef struct {
    const char* name;
    int (*factor)(float* L, const float* A, int D, CholeskyReport* rep, char* err, size_t cap);
    int (*batched)(float* L, const float* A, int batch, int D, double* jitter, char* err, size_t cap);
} Impl;

static int cpu_factor(float* L, const float* A, int D, CholeskyReport* rep, char* err, size_t cap) {
    return cholesky_f32_cpu(L, A, D, NULL, rep, err, cap);
}
static int cpu_batched(float* L, const float* A, int batch, int D, double* jitter, char* err, size_t cap) {
    return cholesky_batched_f32_cpu(L, A, batch, D, NULL, jitter, err, cap);
}

static Backend* cuda_backend(void) {
    static Backend* be;
    static int tried;
    if (!tried) be = backend_cuda_create(DTYPE_F32), tried = 1;
    return be;
}

static int cuda_factor(float* L, const float* A, int D, CholeskyReport* rep, char* err, size_t cap) {
    Backend* be = cuda_backend();
    size_t bytes = sizeof(float) * D * D;
    float* dA = be->alloc(be, bytes);
    float* dL = be->alloc(be, bytes);
    be->upload(be, dA, A, bytes);
    be->upload(be, dL, L, bytes);  // the poison, so an unwritten entry shows
    int rc = cholesky_f32_cuda(dL, dA, D, NULL, rep, err, cap);
    be->download(be, L, dL, bytes);
    be->free(be, dA);
    be->free(be, dL);
    return rc;
}
static int cuda_batched(float* L, const float* A, int batch, int D, double* jitter, char* err, size_t cap) {
    Backend* be = cuda_backend();
    size_t bytes = sizeof(float) * D * D * batch;
    float* dA = be->alloc(be, bytes);
    float* dL = be->alloc(be, bytes);
    be->upload(be, dA, A, bytes);
    be->upload(be, dL, L, bytes);
    int rc = cholesky_batched_f32_cuda(dL, dA, batch, D, NULL, jitter, err, cap);
    be->download(be, L, dL, bytes);
    be->free(be, dA);
    be->free(be, dL);
    return rc;
}

static const Impl cpu = {"cpu", cpu_factor, cpu_batched};
static const Impl cuda = {"cuda", cuda_factor, cuda_batched};

// ---------------------------------------------------------------- cases

// ||L L^T - A|| / ||A|| < 1e-5 in fp32 at the sizes of CLIP embeddings; odd sizes around the
// panel width for the blocked kernel; on CUDA also close to the CPU factor.
static void check_sizes(const Impl* impl, const int* sizes, int n_sizes) {
    for (int s = 0; s < n_sizes; s++) {
        int D = sizes[s];
        if (impl == &cuda && test_leaves_out((size_t)D * D, "cuda D=%d", D)) continue;
        float* A = random_spd(D, 0.05, 100 + D);
        float* L = poisoned((size_t)D * D);
        CholeskyReport rep;
        char err[512] = "";
        double t0 = timer_now();
        int rc = impl->factor(L, A, D, &rep, err, sizeof err);
        double secs = timer_now() - t0;
        CHECK(rc == 0, "%s D=%d: %s", impl->name, D, err);
        CHECK(rep.jitter == 0 && rep.attempts == 1, "%s D=%d: jitter %g on an SPD matrix", impl->name, D, rep.jitter);
        double e = factor_error(L, A, D, 0);
        printf("  %s D=%d: ||LL^T - A||/||A|| = %.2e (%.2f s)\n", impl->name, D, e, secs);
        CHECK(e < 1e-5, "%s D=%d: ||LL^T - A||/||A|| = %.3g", impl->name, D, e);
        if (impl == &cuda) {
            float* Lc = poisoned((size_t)D * D);
            cholesky_f32_cpu(Lc, A, D, NULL, NULL, err, sizeof err);
            double d = rel_err(L, Lc, (size_t)D * D);
            CHECK(d < 1e-4, "cuda vs LAPACKE factor D=%d: relative difference %.3g", D, d);
            free(Lc);
        }
        free(A);
        free(L);
    }
}

static void test_cpu_large(void) {
    int sizes[] = {512, 768, 1024, 1, 3};
    check_sizes(&cpu, sizes, 5);
}
static void test_cuda_large(void) {
    NEED_GPU(cuda_backend());
    int sizes[] = {512, 768, 1024};
    check_sizes(&cuda, sizes, 3);
}
static void test_cuda_odd_sizes(void) {
    NEED_GPU(cuda_backend());
    int sizes[] = {1, 2, 63, 64, 65, 130, 200};
    check_sizes(&cuda, sizes, 7);
}

static void test_cpu_f64(void) {
    int D = 300;
    float* Af = random_spd(D, 0.05, 7);
    double* A = mallocCheck(sizeof(double) * D * D);
    double* L = mallocCheck(sizeof(double) * D * D);
    for (int k = 0; k < D * D; k++) A[k] = Af[k];
    char err[256];
    REQUIRE(cholesky_f64_cpu(L, A, D, NULL, NULL, err, sizeof err) == 0, "%s", err);
    double num = 0, den = 0;
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            double p = 0;
            for (int k = 0; k <= (i < j ? i : j); k++) p += L[i * D + k] * L[j * D + k];
            num += (p - A[i * D + j]) * (p - A[i * D + j]);
            den += A[i * D + j] * A[i * D + j];
            if (j > i) CHECK(L[i * D + j] == 0, "upper entry (%d,%d) = %g", i, j, L[i * D + j]);
        }
    CHECK(sqrt(num / den) < 1e-13, "fp64 ||LL^T - A||/||A|| = %.3g", sqrt(num / den));
    free(Af);
    free(A);
    free(L);
}

// Batches of small matrices, odd sizes; on CUDA equal to the CPU's factors.
static void check_batched(const Impl* impl) {
    int dims[] = {1, 5, 17, 33, 64};
    int batch = 257;
    for (int s = 0; s < 5; s++) {
        int D = dims[s];
        size_t stride = (size_t)D * D;
        if (impl == &cuda && test_leaves_out(stride * batch, "cuda batched %d x [%d x %d]", batch, D, D)) continue;
        float* A = mallocCheck(sizeof(float) * stride * batch);
        for (int m = 0; m < batch; m++) {
            float* Am = random_spd(D, 0.05 + 0.01 * (m % 7), 1000 + m + 100000 * D);
            memcpy(A + m * stride, Am, sizeof(float) * stride);
            free(Am);
        }
        float* L = poisoned(stride * batch);
        double* jitter = mallocCheck(sizeof(double) * batch);
        char err[512] = "";
        REQUIRE(impl->batched(L, A, batch, D, jitter, err, sizeof err) == 0, "%s batched D=%d: %s", impl->name, D, err);
        double worst = 0;
        for (int m = 0; m < batch; m++) {
            double e = factor_error(L + m * stride, A + m * stride, D, 0);
            if (e > worst) worst = e;
            CHECK(jitter[m] == 0, "matrix %d: jitter %g", m, jitter[m]);
        }
        printf("  %s batched %d x [%d x %d]: worst ||LL^T - A||/||A|| = %.2e\n", impl->name, batch, D, D, worst);
        CHECK(worst < 1e-5, "%s batched D=%d: worst error %.3g", impl->name, D, worst);
        if (impl == &cuda) {
            float* Lc = poisoned(stride * batch);
            cholesky_batched_f32_cpu(Lc, A, batch, D, NULL, NULL, err, sizeof err);
            double d = rel_err(L, Lc, stride * batch);
            CHECK(d < 1e-5, "cuda vs LAPACKE batched D=%d: relative difference %.3g", D, d);
            free(Lc);
        }
        free(A);
        free(L);
        free(jitter);
    }
}
static void test_cpu_batched(void) { check_batched(&cpu); }
static void test_cuda_batched(void) {
    NEED_GPU(cuda_backend());
    check_batched(&cuda);
}

// A positive semidefinite matrix gets the smallest jitter of the policy's ladder that works,
// with a warning that states it; the factor is that of A + jitter I.
typedef struct {
    const Impl* impl;
    int D;
} JitterArgs;

static void factor_rank_deficient(void* arg) {
    const JitterArgs* a = arg;
    float* A = rank_deficient(a->D, 77);
    float* L = poisoned((size_t)a->D * a->D);
    CholeskyReport rep;
    char err[512] = "";
    int rc = a->impl->factor(L, A, a->D, &rep, err, sizeof err);
    if (rc != 0) {
        fprintf(stderr, "unexpected error: %s\n", err);
        exit(3);
    }
    double e = factor_error(L, A, a->D, rep.jitter);
    fprintf(stderr, "result jitter=%.9g attempts=%d pivot=%d err=%.3g\n", rep.jitter, rep.attempts, rep.failed_pivot, e);
    exit(rep.jitter > 0 && rep.attempts >= 2 && rep.failed_pivot > 0 && e < 1e-5 ? 0 : 4);
}

static void check_jitter(const Impl* impl) {
    JitterArgs args = {impl, 96};
    char out[4096];
    int status = run_captured(factor_rank_deficient, &args, out, sizeof out);
    CHECK(status == 0, "%s: rank-deficient matrix: status %d, stderr:\n%s", impl->name, status, out);
    CHECK(strstr(out, "warn") && strstr(out, "not positive definite") && strstr(out, "jitter") &&
              strstr(out, "x trace/D"),
          "%s: no warning stating the jitter:\n%s", impl->name, out);
    // The jitter stated in the warning is the one the result reports.
    const char* res = strstr(out, "result jitter=");
    const char* warn = strstr(out, "factored it with jitter ");
    REQUIRE(res && warn, "%s: output lacks the result or the warning:\n%s", impl->name, out);
    double j_res = strtod(res + strlen("result jitter="), NULL), j_warn = strtod(warn + strlen("factored it with jitter "), NULL);
    CHECK(fabs(j_res - j_warn) <= 6e-3 * j_res, "%s: warning says %g, result %g", impl->name, j_warn, j_res);  // printed with 3 digits
}
static void test_cpu_jitter(void) { check_jitter(&cpu); }
static void test_cuda_jitter(void) {
    NEED_GPU(cuda_backend());
    check_jitter(&cuda);
}

// Errors: each leaves L all zeros and names what is wrong.
static void expect_error(const Impl* impl, const float* A, int D, const char* want1, const char* want2) {
    float* L = poisoned((size_t)D * D);
    char err[512] = "";
    CholeskyReport rep;
    int rc = impl->factor(L, A, D, &rep, err, sizeof err);
    CHECK(rc == -1, "%s: accepted a bad matrix (wanted \"%s\")", impl->name, want1);
    CHECK(strstr(err, want1) && strstr(err, want2), "%s: error \"%s\" lacks \"%s\" / \"%s\"", impl->name, err, want1, want2);
    CHECK(all_zero(L, (size_t)D * D), "%s: factor not zeroed after \"%s\"", impl->name, err);
    free(L);
}

static void check_errors(const Impl* impl) {
    int D = 70;
    float* A = random_spd(D, 0.05, 5);
    // NaN and Inf
    float* bad = mallocCheck(sizeof(float) * D * D);
    memcpy(bad, A, sizeof(float) * D * D);
    bad[3 * D + 5] = NAN;
    expect_error(impl, bad, D, "entry (3, 5) is not finite", "[70 x 70]");
    memcpy(bad, A, sizeof(float) * D * D);
    bad[69 * D + 0] = INFINITY;
    expect_error(impl, bad, D, "entry (69, 0) is not finite", "cholesky");
    // asymmetry beyond the tolerance (1e-5 x max|A|)
    memcpy(bad, A, sizeof(float) * D * D);
    bad[2 * D + 7] += 1e-3f;
    expect_error(impl, bad, D, "not symmetric", "A[2][7] - A[7][2]");
    // clearly indefinite: a negative eigenvalue no jitter within the limit removes
    memcpy(bad, A, sizeof(float) * D * D);
    for (int j = 0; j < D; j++) bad[10 * D + j] = bad[j * D + 10] = 0.0f;
    bad[10 * D + 10] = -1.0f;
    expect_error(impl, bad, D, "not positive definite (pivot 11 failed)", "the limit");
    // non-positive trace
    for (int k = 0; k < D * D; k++) bad[k] = k % (D + 1) == 0 ? -1.0f : 0.0f;
    expect_error(impl, bad, D, "not positive definite (pivot 1 failed)", "trace / D = -1 is not positive");
    free(A);
    free(bad);
}
static void test_cpu_errors(void) { check_errors(&cpu); }
static void test_cuda_errors(void) {
    NEED_GPU(cuda_backend());
    check_errors(&cuda);
}

// Batched: a jittered matrix is reported per matrix; a bad one is named and zeroes the batch.
static void check_batched_policy(const Impl* impl) {
    int D = 16, batch = 9;
    size_t stride = (size_t)D * D;
    float* A = mallocCheck(sizeof(float) * stride * batch);
    for (int m = 0; m < batch; m++) {
        float* Am = m == 4 ? rank_deficient(D, 9) : random_spd(D, 0.1, 300 + m);
        memcpy(A + m * stride, Am, sizeof(float) * stride);
        free(Am);
    }
    float* L = poisoned(stride * batch);
    double jitter[9];
    char err[512] = "";
    REQUIRE(impl->batched(L, A, batch, D, jitter, err, sizeof err) == 0, "%s: %s", impl->name, err);
    for (int m = 0; m < batch; m++) {
        CHECK((m == 4) == (jitter[m] > 0), "%s: matrix %d jitter %g", impl->name, m, jitter[m]);
        double e = factor_error(L + m * stride, A + m * stride, D, jitter[m]);
        CHECK(e < 1e-5, "%s: matrix %d error %.3g", impl->name, m, e);
    }
    // The jitter comes from the whole trace: the same ladder step as LAPACKE's path.
    double jitter_cpu[9];
    float* Lc = poisoned(stride * batch);
    REQUIRE(cholesky_batched_f32_cpu(Lc, A, batch, D, NULL, jitter_cpu, err, sizeof err) == 0, "cpu: %s", err);
    CHECK(fabs(jitter[4] - jitter_cpu[4]) <= 1e-6 * jitter_cpu[4], "%s: jitter %.9g, LAPACKE path %.9g", impl->name,
          jitter[4], jitter_cpu[4]);
    free(Lc);
    // Bad entries anywhere in a matrix, early rows or late, are found and named.
    struct { int m, i, j; float v; const char* want; } bad[] = {
        {6, 1, 2, NAN, "entry (1, 2) is not finite"},
        {6, 10, 11, NAN, "entry (10, 11) is not finite"},
        {8, 15, 0, INFINITY, "entry (15, 0) is not finite"},
        {3, 12, 9, 1.0f, "|A[9][12] - A[12][9]| = 1 exceeds"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        float* Ab = mallocCheck(sizeof(float) * stride * batch);
        memcpy(Ab, A, sizeof(float) * stride * batch);
        Ab[bad[k].m * stride + (size_t)bad[k].i * D + bad[k].j] += bad[k].v;
        for (size_t q = 0; q < stride * batch; q++) L[q] = NAN;
        char what[64];
        snprintf(what, sizeof what, "matrix %d of the batch of 9", bad[k].m);
        int rc = impl->batched(L, Ab, batch, D, jitter, err, sizeof err);
        CHECK(rc == -1 && strstr(err, what) && strstr(err, bad[k].want), "%s: batched error for \"%s\": \"%s\"",
              impl->name, bad[k].want, err);
        CHECK(all_zero(L, stride * batch), "%s: batch not zeroed after an error", impl->name);
        free(Ab);
    }
    free(A);
    free(L);
}
static void test_cpu_batched_policy(void) { check_batched_policy(&cpu); }
static void test_cuda_batched_policy(void) {
    NEED_GPU(cuda_backend());
    check_batched_policy(&cuda);
}

int main(void) {
    test_seed();
    RUN(test_cpu_large);
    RUN(test_cpu_f64);
    RUN(test_cpu_batched);
    RUN(test_cpu_jitter);
    RUN(test_cpu_errors);
    RUN(test_cpu_batched_policy);
    RUN(test_cuda_large);
    RUN(test_cuda_odd_sizes);
    RUN(test_cuda_batched);
    RUN(test_cuda_jitter);
    RUN(test_cuda_errors);
    RUN(test_cuda_batched_policy);
    return test_summary();
}
