// CPU Cholesky through LAPACKE, and the validation and jitter policy shared with the CUDA
// driver in cholesky.cu (see cholesky.h).
#include "kernels/cholesky.h"

#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/check.h"
#include "common/log.h"

// ---------------------------------------------------------------- policy pieces

void cholesky_scan_merge(CholeskyScan* into, const CholeskyScan* later) {
    if (later->max_abs > into->max_abs) into->max_abs = later->max_abs;
    if (later->max_asym > into->max_asym) {
        into->max_asym = later->max_asym;
        into->asym_i = later->asym_i;
        into->asym_j = later->asym_j;
    }
    into->trace += later->trace;
    if (into->nonfinite_i < 0 && later->nonfinite_i >= 0) {
        into->nonfinite_i = later->nonfinite_i;
        into->nonfinite_j = later->nonfinite_j;
    }
}

int cholesky_check_scan(const CholeskyScan* scan, int D, const CholeskyPolicy* policy, const char* what,
                        char* err, size_t err_size) {
    if (scan->nonfinite_i >= 0) {
        snprintf(err, err_size, "%s [%d x %d]: entry (%lld, %lld) is not finite (NaN or Inf)", what, D, D,
                 scan->nonfinite_i, scan->nonfinite_j);
        return -1;
    }
    double tol = policy->symmetry_rel_tol * scan->max_abs;
    if (scan->max_asym > tol) {
        snprintf(err, err_size,
                 "%s [%d x %d] is not symmetric: |A[%lld][%lld] - A[%lld][%lld]| = %.3g exceeds %.1g x max|A| = %.3g",
                 what, D, D, scan->asym_i, scan->asym_j, scan->asym_j, scan->asym_i, scan->max_asym,
                 policy->symmetry_rel_tol, tol);
        return -1;
    }
    return 0;
}

double cholesky_jitter(const CholeskyPolicy* policy, double trace, int D, int attempt) {
    if (attempt == 0) return 0.0;
    double mean_diag = trace / D;
    if (!(mean_diag > 0)) return -1.0;
    double rel = policy->jitter_rel_first * pow(policy->jitter_growth, attempt - 1);
    if (rel > policy->jitter_rel_max * (1 + 1e-9)) return -1.0;
    return rel * mean_diag;
}

void cholesky_format_failure(const CholeskyPolicy* policy, const CholeskyScan* scan, int D, int failed_pivot,
                             const char* what, char* err, size_t err_size) {
    double mean_diag = scan->trace / D;
    if (!(mean_diag > 0))
        snprintf(err, err_size,
                 "%s [%d x %d] is not positive definite (pivot %d failed) and its trace / D = %.3g is not positive, "
                 "so no jitter relative to it applies",
                 what, D, D, failed_pivot, mean_diag);
    else
        snprintf(err, err_size,
                 "%s [%d x %d] is not positive definite (pivot %d failed), even with jitter %.3g "
                 "(= %.0e x trace/D, the limit) on the diagonal",
                 what, D, D, failed_pivot, policy->jitter_rel_max * mean_diag, policy->jitter_rel_max);
}

void cholesky_warn_jitter(const CholeskyScan* scan, int D, const CholeskyReport* report, const char* what) {
    LOG_WARN("%s [%d x %d] is not positive definite (pivot %d failed); factored it with jitter %.3g "
             "(= %.0e x trace/D) added to the diagonal",
             what, D, D, report->failed_pivot, report->jitter, report->jitter / (scan->trace / D));
}

void cholesky_warn_batch(int n_jittered, int batch, int D, double worst_jitter, double worst_rel, int worst) {
    LOG_WARN("cholesky: %d of the batch of %d [%d x %d] matrices were not positive definite and were "
             "factored with jitter on the diagonal; the largest, %.3g (= %.0e x trace/D), on matrix %d",
             n_jittered, batch, D, D, worst_jitter, worst_rel, worst);
}

// ---------------------------------------------------------------- CPU drivers, fp32 and fp64

// Scan of rows [0, D) of A; REAL is float or double.
#define DEFINE_SCAN(name, REAL)                                                               \
    static CholeskyScan name(const REAL* A, int D) {                                          \
        CholeskyScan s = {0, 0, 0, -1, -1, -1, -1};                                           \
        for (long long i = 0; i < D; i++) {                                                   \
            for (long long j = 0; j < D; j++) {                                               \
                double a = A[i * D + j];                                                      \
                if (!isfinite(a)) {                                                           \
                    if (s.nonfinite_i < 0) s.nonfinite_i = i, s.nonfinite_j = j;              \
                    continue;                                                                 \
                }                                                                             \
                if (fabs(a) > s.max_abs) s.max_abs = fabs(a);                                 \
                double asym = fabs(a - (double)A[j * D + i]);                                 \
                if (asym > s.max_asym) s.max_asym = asym, s.asym_i = i, s.asym_j = j;         \
            }                                                                                 \
            s.trace += A[i * D + i];                                                          \
        }                                                                                     \
        return s;                                                                             \
    }
DEFINE_SCAN(scan_f32, float)
DEFINE_SCAN(scan_f64, double)

// One attempt: L = lower(A) + jitter I, factored in place. Row-major lower-triangular L is
// column-major upper-triangular L^T, so LAPACK's 'U' factor A = U^T U of the same memory
// is exactly A = L L^T with no transposition. Returns 0 or the 1-based failed pivot.
// A finite factor needs no further check: every entry L_ij (j < i) enters pivot i as
// A_ii - sum_j L_ij^2, so an Inf or NaN entry makes that pivot fail (potrf rejects NaN pivots).
#define DEFINE_ATTEMPT(name, REAL, potrf)                                                 \
    static int name(REAL* L, const REAL* A, int D, double jitter) {                       \
        for (long long i = 0; i < D; i++)                                                 \
            for (long long j = 0; j < D; j++)                                             \
                L[i * D + j] = j < i ? A[i * D + j] : j == i ? (REAL)(A[i * D + j] + jitter) : 0; \
        lapack_int info = potrf(LAPACK_COL_MAJOR, 'U', D, L, D);                          \
        if (info < 0) FATAL("%s: illegal argument %d", #potrf, (int)-info);               \
        return (int)info;                                                                 \
    }
DEFINE_ATTEMPT(attempt_f32, float, LAPACKE_spotrf)
DEFINE_ATTEMPT(attempt_f64, double, LAPACKE_dpotrf)

// The policy for one matrix; `warn`: log the jitter warning (the batched driver sums up instead).
#define DEFINE_DRIVER(name, REAL, scan, attempt)                                                      \
    static int name(REAL* L, const REAL* A, int D, const CholeskyPolicy* policy, CholeskyReport* report, \
                    double* trace, const char* what, int warn, char* err, size_t err_size) {           \
        CholeskyReport rep = {0, 0, 0};                                                               \
        if (report) *report = rep;                                                                    \
        memset(L, 0, sizeof(REAL) * (size_t)D * D);                                                   \
        if (D <= 0) {                                                                                 \
            snprintf(err, err_size, "%s: dimension %d is not positive", what, D);                    \
            return -1;                                                                                \
        }                                                                                             \
        CholeskyScan s = scan(A, D);                                                                  \
        if (trace) *trace = s.trace;                                                                  \
        if (cholesky_check_scan(&s, D, policy, what, err, err_size)) return -1;                       \
        for (int k = 0;; k++) {                                                                       \
            double jitter = cholesky_jitter(policy, s.trace, D, k);                                   \
            if (jitter < 0) {                                                                         \
                memset(L, 0, sizeof(REAL) * (size_t)D * D);                                           \
                cholesky_format_failure(policy, &s, D, rep.failed_pivot, what, err, err_size);        \
                return -1;                                                                            \
            }                                                                                         \
            int pivot = attempt(L, A, D, jitter);                                                     \
            rep.attempts = k + 1;                                                                     \
            rep.jitter = jitter;                                                                      \
            if (k == 0) rep.failed_pivot = pivot;                                                     \
            if (pivot == 0) break;                                                                    \
        }                                                                                             \
        if (rep.jitter > 0 && warn) cholesky_warn_jitter(&s, D, &rep, what);                          \
        if (report) *report = rep;                                                                    \
        return 0;                                                                                     \
    }
DEFINE_DRIVER(driver_f32, float, scan_f32, attempt_f32)
DEFINE_DRIVER(driver_f64, double, scan_f64, attempt_f64)

int cholesky_f32_cpu(float* L, const float* A, int D, const CholeskyPolicy* policy, CholeskyReport* report,
                     char* err, size_t err_size) {
    CholeskyPolicy p = policy ? *policy : CHOLESKY_POLICY_DEFAULT;
    return driver_f32(L, A, D, &p, report, NULL, "cholesky: the matrix", 1, err, err_size);
}

int cholesky_f64_cpu(double* L, const double* A, int D, const CholeskyPolicy* policy, CholeskyReport* report,
                     char* err, size_t err_size) {
    CholeskyPolicy p = policy ? *policy : CHOLESKY_POLICY_DEFAULT;
    return driver_f64(L, A, D, &p, report, NULL, "cholesky: the matrix", 1, err, err_size);
}

int cholesky_batched_f32_cpu(float* L, const float* A, int batch, int D, const CholeskyPolicy* policy,
                             double* jitter, char* err, size_t err_size) {
    CholeskyPolicy p = policy ? *policy : CHOLESKY_POLICY_DEFAULT;
    size_t stride = (size_t)D * D;
    int n_jittered = 0, worst = -1;
    double worst_jitter = 0, worst_rel = 0;
    for (int m = 0; m < batch; m++) {
        char what[96];
        snprintf(what, sizeof what, "cholesky: matrix %d of the batch of %d", m, batch);
        CholeskyReport rep;
        double trace;
        if (driver_f32(L + m * stride, A + m * stride, D, &p, &rep, &trace, what, 0, err, err_size)) {
            memset(L, 0, sizeof(float) * stride * batch);
            return -1;
        }
        if (jitter) jitter[m] = rep.jitter;
        if (rep.jitter > 0) {
            n_jittered++;
            double rel = rep.jitter * D / trace;
            if (rel > worst_rel) worst_rel = rel, worst_jitter = rep.jitter, worst = m;
        }
    }
    if (n_jittered) cholesky_warn_batch(n_jittered, batch, D, worst_jitter, worst_rel, worst);
    return 0;
}
