// Cholesky factorisation A = L L^T of symmetric positive definite matrices, on the CPU
// (LAPACKE spotrf/dpotrf) and in hand-written CUDA kernels (blocked, and batched for many
// small matrices), all behind one validation and jitter policy:
//
//   A [D,D] row-major, symmetric: both triangles are read to validate it, the lower one to
//           factor it.
//   L [D,D] row-major, lower-triangular; its upper triangle is written as zeros.
//
// Policy (docs/GAP.md):
// - a non-finite entry of A, or an asymmetry |A_ij - A_ji| > symmetry_rel_tol * max|A|, is an
//   error naming the entry;
// - when the factorisation fails (a pivot <= 0), A + jitter I is factored instead, with
//   jitter = jitter_rel_first * trace(A)/D, grown by jitter_growth per attempt up to
//   jitter_rel_max * trace(A)/D; a warning states the jitter used. Past the limit (or when
//   trace(A) <= 0, where no relative jitter applies) it is an error;
// - on error L is all zeros: a factor is never NaN or Inf.
// Errors are returned (-1 and a message in err), never exits, so that callers can name the
// file the matrix came from.
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    double jitter_rel_first;  // first jitter, as a fraction of trace(A)/D
    double jitter_growth;     // jitter factor between attempts
    double jitter_rel_max;    // largest jitter tried, as a fraction of trace(A)/D
    double symmetry_rel_tol;  // largest |A_ij - A_ji| accepted, as a fraction of max|A|
} CholeskyPolicy;

#define CHOLESKY_POLICY_DEFAULT ((CholeskyPolicy){1e-6, 10.0, 1e-2, 1e-5})

// What one factorisation did.
typedef struct {
    double jitter;      // added to the diagonal (0: A itself was factored)
    int attempts;       // factorisations tried (1 when no jitter was needed)
    int failed_pivot;   // 1-based pivot that failed on the first attempt (0: none)
} CholeskyReport;

// Validation summary of a matrix (or of a range of its rows). Entries are 0-based; -1: none.
typedef struct {
    double max_abs;      // max |A_ij|
    double max_asym;     // max |A_ij - A_ji|
    double trace;        // sum of the diagonal
    long long asym_i, asym_j;            // where max_asym is (first in row-major order on ties)
    long long nonfinite_i, nonfinite_j;  // first non-finite entry in row-major order
} CholeskyScan;

// policy may be NULL (CHOLESKY_POLICY_DEFAULT); report may be NULL.
// Returns 0, or -1 with a message in err (L zeroed).
int cholesky_f32_cpu(float* L, const float* A, int D, const CholeskyPolicy* policy, CholeskyReport* report,
                     char* err, size_t err_size);
int cholesky_f64_cpu(double* L, const double* A, int D, const CholeskyPolicy* policy, CholeskyReport* report,
                     char* err, size_t err_size);
// batch matrices A [batch,D,D] -> L [batch,D,D], each under the policy; jitter [batch] (may be
// NULL) receives each matrix's jitter. One warning sums up the jittered matrices. An error
// names the matrix; then every L of the batch is zeroed.
int cholesky_batched_f32_cpu(float* L, const float* A, int batch, int D, const CholeskyPolicy* policy,
                             double* jitter, char* err, size_t err_size);

// ---- CUDA (device buffers; synchronous: they read the pivot status back)
// The same policy as the CPU functions, same arguments; L and A on the device, jitter on the host.
int cholesky_f32_cuda(float* L, const float* A, int D, const CholeskyPolicy* policy, CholeskyReport* report,
                      char* err, size_t err_size);
#define CHOLESKY_BATCHED_MAX_DIM 64  // the batched kernel holds a whole matrix in shared memory
int cholesky_batched_f32_cuda(float* L, const float* A, int batch, int D, const CholeskyPolicy* policy,
                              double* jitter, char* err, size_t err_size);

// The bare factorisations the policy drives (what the benchmarks time against cuSOLVER):
// in place on the lower triangle of L (the upper triangle is neither read nor written);
// info (device int, or int[batch] for the batched one) receives 0 or the 1-based pivot that
// failed, as potrf's devInfo. Asynchronous.
void cholesky_factor_f32_cuda(float* L, int D, int* info);
void cholesky_batched_factor_f32_cuda(float* L, int batch, int D, int* info);

// ---- shared pieces of the policy (cholesky.c), used by both backends
// Validation of a scan: 0, or -1 with an error naming the entry; `what` names the matrix.
int cholesky_check_scan(const CholeskyScan* scan, int D, const CholeskyPolicy* policy, const char* what,
                        char* err, size_t err_size);
// Merges the scan of a later range of rows into *into (ties keep the earlier entry).
void cholesky_scan_merge(CholeskyScan* into, const CholeskyScan* later);
// Jitter of attempt k (k = 0: none; k >= 1: growing), or -1 past the policy's limit.
double cholesky_jitter(const CholeskyPolicy* policy, double trace, int D, int attempt);
// The error for a matrix that no jitter up to the limit made positive definite.
void cholesky_format_failure(const CholeskyPolicy* policy, const CholeskyScan* scan, int D, int failed_pivot,
                             const char* what, char* err, size_t err_size);
// The warning stating the jitter used.
void cholesky_warn_jitter(const CholeskyScan* scan, int D, const CholeskyReport* report, const char* what);
// The one warning of a batch: how many matrices got jitter, and the largest (relative to its
// matrix's trace/D), on which matrix.
void cholesky_warn_batch(int n_jittered, int batch, int D, double worst_jitter, double worst_rel, int worst);

#ifdef __cplusplus
}
#endif
