#include "kernels/cuda_common.cuh"
// Hand-written CUDA Cholesky (see cholesky.h), right-looking and blocked by CHOL_NB columns:
// for each panel k0,
//   1. chol_diag_kernel: the CHOL_NB x CHOL_NB diagonal block, factored in shared memory;
//   2. chol_panel_kernel: the rows below it, L21 = A21 L11^-T (one row per thread, L11 in
//      shared memory);
//   3. chol_trailing_kernel: A22 -= L21 L21^T on the lower tiles of the trailing matrix.
// The batched variant factors one small matrix per thread block, whole in shared memory,
// with the same tile factorisation as step 1. Pivot failures are reported as potrf's devInfo
// and stop the remaining kernels on the device; the policy (validation, jitter) runs on the
// host around them, as on the CPU.
#include <float.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cholesky.h"
#include "kernels/cuda_utils.cuh"

// Full unrolling keeps the small per-thread arrays in registers on the GPU; the host compiler
// of the emulation has its own heuristics and does not know the pragma.
#ifdef TIPCAP_CUDA_EMU
#define UNROLL
#else
#define UNROLL _Pragma("unroll")
#endif

#define CHOL_NB 64            // panel width (and the largest tile factored in shared memory)
#define CHOL_TILE_LD (CHOL_NB + 1)  // padded leading dimension of shared tiles: no bank conflicts
#define CHOL_THREADS 256
#define CHOL_PANEL_ROWS 32    // rows of L21 per block of the panel solve (one per thread)
#define CHOL_SCAN_ROWS 8      // rows per block of the validation scan
// Dynamic shared memory of the kernels: a tile and the status word; the diagonal tile and a block of panel
// rows; two panels; one ScanPart per thread
#define CHOL_TILE_SHARED_BYTES (CHOL_NB * CHOL_TILE_LD * sizeof(float) + sizeof(int))
#define CHOL_PANEL_SHARED_BYTES ((CHOL_NB + CHOL_PANEL_ROWS) * CHOL_TILE_LD * sizeof(float))
#define CHOL_TRAILING_SHARED_BYTES (2 * CHOL_NB * CHOL_TILE_LD * sizeof(float))
#define CHOL_SCAN_SHARED_BYTES (CHOL_THREADS * sizeof(ScanPart))

// ---------------------------------------------------------------- device pieces

// Factors in place the n x n (n <= CHOL_NB) lower triangle of the tile in shared memory s
// (leading dimension CHOL_TILE_LD), unblocked right-looking, all threads of the block.
// Returns to every thread 0 or the 1-based pivot that was not positive (or not finite).
__device__ int chol_factor_tile(float* s, int n, int* status) {
    int tid = threadIdx.x + threadIdx.y * blockDim.x;
    int nthreads = blockDim.x * blockDim.y;
    if (tid == 0) *status = 0;
    for (int k = 0; k < n; k++) {
        if (tid == 0) {
            float d = s[k * CHOL_TILE_LD + k];
            if (d > 0.0f && d <= FLT_MAX) s[k * CHOL_TILE_LD + k] = sqrtf(d);
            else *status = k + 1;
        }
        __syncthreads();
        if (*status) return *status;
        float inv = 1.0f / s[k * CHOL_TILE_LD + k];
        for (int i = k + 1 + tid; i < n; i += nthreads) s[i * CHOL_TILE_LD + k] *= inv;
        __syncthreads();
        int m = n - k - 1;  // trailing size; update (i, j) with k < j <= i < n
        for (int idx = tid; idx < m * m; idx += nthreads) {
            int i = k + 1 + idx / m, j = k + 1 + idx % m;
            if (j <= i) s[i * CHOL_TILE_LD + j] -= s[i * CHOL_TILE_LD + k] * s[j * CHOL_TILE_LD + k];
        }
        // No barrier here: the next pivot (k + 1, k + 1) is idx 0 of this update, so thread 0 both
        // writes and reads it; everything else the next step reads lies behind its first barrier.
    }
    return 0;
}

// The n x n lower triangle of the matrix at `a` (leading dimension lda) into / out of the tile
// (one-dimensional blocks). No barrier after the load: chol_factor_tile, which follows, first reads
// only the pivot (0, 0), which thread 0 loaded, before its own first barrier.
__device__ void chol_load_tile(float* s, const float* a, int lda, int n) {
    for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
        int i = idx / n, j = idx % n;
        if (j <= i) s[i * CHOL_TILE_LD + j] = a[(size_t)i * lda + j];
    }
}
__device__ void chol_store_tile(float* a, int lda, const float* s, int n) {
    for (int idx = threadIdx.x; idx < n * n; idx += blockDim.x) {
        int i = idx / n, j = idx % n;
        if (j <= i) a[(size_t)i * lda + j] = s[i * CHOL_TILE_LD + j];
    }
}

// ---------------------------------------------------------------- kernels

// Step 1: the diagonal block at (k0, k0), nb <= CHOL_NB. One block of CHOL_THREADS.
__global__ void chol_diag_kernel(float* L, int D, int k0, int nb, int* info) {
    if (*info) return;
    DYNAMIC_SHARED(float, tile, CHOL_TILE_SHARED_BYTES);  // [CHOL_NB, CHOL_TILE_LD], then the status word
    int* status = (int*)(tile + CHOL_NB * CHOL_TILE_LD);
    float* a = L + (size_t)k0 * D + k0;
    chol_load_tile(tile, a, D, nb);
    int failed = chol_factor_tile(tile, nb, status);
    if (failed) {
        if (threadIdx.x == 0) *info = k0 + failed;
        return;
    }
    chol_store_tile(a, D, tile, nb);
}

// Step 2: rows k0 + CHOL_NB + r of the panel: x L11^T = a, solved row by row (one thread per row,
// the row in registers). Blocks of CHOL_PANEL_ROWS threads.
__global__ void chol_panel_kernel(float* L, int D, int k0, int* info) {
    if (*info) return;
    DYNAMIC_SHARED(float, smem, CHOL_PANEL_SHARED_BYTES);
    float* l11 = smem;                              // [CHOL_NB, CHOL_TILE_LD]
    float* rows = smem + CHOL_NB * CHOL_TILE_LD;    // [CHOL_PANEL_ROWS, CHOL_TILE_LD]
    int first_row = k0 + CHOL_NB + blockIdx.x * CHOL_PANEL_ROWS;
    int n_rows = min(CHOL_PANEL_ROWS, D - first_row);
    const float* diag = L + (size_t)k0 * D + k0;
    for (int idx = threadIdx.x; idx < CHOL_NB * CHOL_NB; idx += blockDim.x) {
        int i = idx / CHOL_NB, j = idx % CHOL_NB;
        l11[i * CHOL_TILE_LD + j] = j <= i ? diag[(size_t)i * D + j] : 0.0f;
    }
    for (int idx = threadIdx.x; idx < n_rows * CHOL_NB; idx += blockDim.x) {  // coalesced along columns
        int r = idx / CHOL_NB, j = idx % CHOL_NB;
        rows[r * CHOL_TILE_LD + j] = L[(size_t)(first_row + r) * D + k0 + j];
    }
    __syncthreads();
    int r = threadIdx.x;
    if (r < n_rows) {
        float x[CHOL_NB];
UNROLL
        for (int j = 0; j < CHOL_NB; j++) x[j] = rows[r * CHOL_TILE_LD + j];
UNROLL
        for (int j = 0; j < CHOL_NB; j++) {
            float acc = x[j];
UNROLL
            for (int m = 0; m < j; m++) acc -= x[m] * l11[j * CHOL_TILE_LD + m];
            x[j] = acc / l11[j * CHOL_TILE_LD + j];
        }
UNROLL
        for (int j = 0; j < CHOL_NB; j++) rows[r * CHOL_TILE_LD + j] = x[j];
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < n_rows * CHOL_NB; idx += blockDim.x) {
        int rr = idx / CHOL_NB, j = idx % CHOL_NB;
        L[(size_t)(first_row + rr) * D + k0 + j] = rows[rr * CHOL_TILE_LD + j];
    }
}

// Step 3: A22 -= L21 L21^T on one CHOL_NB x CHOL_NB tile (ti, tj), tj <= ti, of the trailing
// matrix that starts at row and column k0 + CHOL_NB. Blocks are the lower tiles in row-major
// order; 16 x 16 threads, each 4 x 4 outputs strided by 16 (coalesced stores).
__global__ void chol_trailing_kernel(float* L, int D, int k0, int* info) {
    if (*info) return;
    DYNAMIC_SHARED(float, smem, CHOL_TRAILING_SHARED_BYTES);
    float* pi = smem;                            // panel rows of the tile's rows [CHOL_NB, CHOL_TILE_LD]
    float* pj = smem + CHOL_NB * CHOL_TILE_LD;   // panel rows of the tile's columns
    int t = blockIdx.x;
    int ti = (int)((sqrtf(8.0f * t + 1.0f) - 1.0f) * 0.5f);
    while ((ti + 1) * (ti + 2) / 2 <= t) ti++;
    while (ti * (ti + 1) / 2 > t) ti--;
    int tj = t - ti * (ti + 1) / 2;
    int start = k0 + CHOL_NB;
    int i0 = start + ti * CHOL_NB, j0 = start + tj * CHOL_NB;
    int tid = threadIdx.y * blockDim.x + threadIdx.x;
    for (int idx = tid; idx < CHOL_NB * CHOL_NB; idx += blockDim.x * blockDim.y) {
        int r = idx / CHOL_NB, m = idx % CHOL_NB;
        pi[r * CHOL_TILE_LD + m] = i0 + r < D ? L[(size_t)(i0 + r) * D + k0 + m] : 0.0f;
        pj[r * CHOL_TILE_LD + m] = j0 + r < D ? L[(size_t)(j0 + r) * D + k0 + m] : 0.0f;
    }
    __syncthreads();
    float acc[4][4] = {{0}};
    int tx = threadIdx.x, ty = threadIdx.y;
UNROLL
    for (int m = 0; m < CHOL_NB; m++) {
        float a[4], b[4];
UNROLL
        for (int q = 0; q < 4; q++) {
            a[q] = pi[(ty + 16 * q) * CHOL_TILE_LD + m];
            b[q] = pj[(tx + 16 * q) * CHOL_TILE_LD + m];
        }
UNROLL
        for (int r = 0; r < 4; r++)
UNROLL
            for (int c = 0; c < 4; c++) acc[r][c] += a[r] * b[c];
    }
UNROLL
    for (int r = 0; r < 4; r++) {
        int i = i0 + ty + 16 * r;
UNROLL
        for (int c = 0; c < 4; c++) {
            int j = j0 + tx + 16 * c;
            if (i < D && j <= i) L[(size_t)i * D + j] -= acc[r][c];
        }
    }
}

// One small matrix (D <= CHOL_NB) per block, factored whole in shared memory.
__global__ void chol_batched_kernel(float* L, int D, int* info) {
    DYNAMIC_SHARED(float, tile, CHOL_TILE_SHARED_BYTES);
    int* status = (int*)(tile + CHOL_NB * CHOL_TILE_LD);
    float* a = L + (size_t)blockIdx.x * D * D;
    chol_load_tile(tile, a, D, D);
    int failed = chol_factor_tile(tile, D, status);
    if (threadIdx.x == 0) info[blockIdx.x] = failed;
    if (!failed) chol_store_tile(a, D, tile, D);
}

// L = lower(A) + jitter[m] I (upper triangle zeroed), for the batch of matrices.
__global__ void chol_copy_lower_kernel(float* L, const float* A, int batch, int D, const float* jitter) {
    size_t n = (size_t)batch * D * D;
    for (size_t idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x; idx < n; idx += (size_t)gridDim.x * blockDim.x) {
        size_t m = idx / ((size_t)D * D);
        int i = (int)(idx / D % D), j = (int)(idx % D);
        L[idx] = j < i ? A[idx] : j == i ? A[idx] + jitter[m] : 0.0f;
    }
}

// Validation scan as the CPU's (cholesky.c): per block, rows [blockIdx.x * CHOL_SCAN_ROWS, ...)
// of matrix blockIdx.y. Thread 0 merges the threads' results in thread order, which is
// row-major order of their first entries, so "first on ties" matches the CPU.
struct ScanPart {
    float max_abs, max_asym, trace;
    int asym_i, asym_j, nonfinite_i, nonfinite_j;
};

__global__ void chol_scan_kernel(ScanPart* parts, const float* A, int D) {
    DYNAMIC_SHARED(ScanPart, sp, CHOL_SCAN_SHARED_BYTES);
    const float* a = A + (size_t)blockIdx.y * D * D;
    int row0 = blockIdx.x * CHOL_SCAN_ROWS;
    int n = min(CHOL_SCAN_ROWS, D - row0) * D;
    ScanPart p = {0.0f, 0.0f, 0.0f, -1, -1, -1, -1};
    // Each thread takes a contiguous run of entries, so that its own first hit is the
    // row-major first among its entries and threads merge in row-major order.
    int per = CEIL_DIV(n, (int)blockDim.x);
    int begin = threadIdx.x * per, end = min(n, begin + per);
    for (int idx = begin; idx < end; idx++) {
        int i = row0 + idx / D, j = idx % D;
        float v = a[(size_t)i * D + j];
        if (!(fabsf(v) <= FLT_MAX)) {
            if (p.nonfinite_i < 0) p.nonfinite_i = i, p.nonfinite_j = j;
            continue;
        }
        p.max_abs = fmaxf(p.max_abs, fabsf(v));
        float asym = fabsf(v - a[(size_t)j * D + i]);
        if (asym > p.max_asym) p.max_asym = asym, p.asym_i = i, p.asym_j = j;
        if (i == j) p.trace += v;
    }
    sp[threadIdx.x] = p;
    __syncthreads();
    if (threadIdx.x == 0) {
        ScanPart total = sp[0];
        for (int t = 1; t < (int)blockDim.x; t++) {
            ScanPart q = sp[t];
            total.max_abs = fmaxf(total.max_abs, q.max_abs);
            if (q.max_asym > total.max_asym) total.max_asym = q.max_asym, total.asym_i = q.asym_i, total.asym_j = q.asym_j;
            total.trace += q.trace;
            if (total.nonfinite_i < 0 && q.nonfinite_i >= 0) total.nonfinite_i = q.nonfinite_i, total.nonfinite_j = q.nonfinite_j;
        }
        parts[blockIdx.y * gridDim.x + blockIdx.x] = total;
    }
}

// ---------------------------------------------------------------- launchers

void cholesky_factor_f32_cuda(float* L, int D, int* info) {
    cudaCheck(cudaMemset(info, 0, sizeof(int)));
    for (int k0 = 0; k0 < D; k0 += CHOL_NB) {
        int nb = min(CHOL_NB, D - k0);
        LAUNCH(chol_diag_kernel, 1, CHOL_THREADS, CHOL_TILE_SHARED_BYTES, L, D, k0, nb, info);
        cudaCheckLaunch();
        int rest = D - k0 - nb;
        if (rest <= 0) break;
        LAUNCH(chol_panel_kernel, CEIL_DIV(rest, CHOL_PANEL_ROWS), CHOL_PANEL_ROWS, CHOL_PANEL_SHARED_BYTES, L, D, k0,
               info);
        cudaCheckLaunch();
        int tiles = CEIL_DIV(rest, CHOL_NB);
        LAUNCH(chol_trailing_kernel, tiles * (tiles + 1) / 2, dim3(16, 16), CHOL_TRAILING_SHARED_BYTES, L, D, k0, info);
        cudaCheckLaunch();
    }
}

void cholesky_batched_factor_f32_cuda(float* L, int batch, int D, int* info) {
    if (D < 1 || D > CHOLESKY_BATCHED_MAX_DIM) {
        fprintf(stderr, "error: %s:%d: batched Cholesky takes 1 <= D <= %d, got %d\n", __FILE__, __LINE__,
                CHOLESKY_BATCHED_MAX_DIM, D);
        exit(1);
    }
    if (batch <= 0) return;
    LAUNCH(chol_batched_kernel, batch, CHOL_THREADS, CHOL_TILE_SHARED_BYTES, L, D, info);
    cudaCheckLaunch();
}

// Device scratch of one policy run: scan parts, pivot status, jitter per matrix.
typedef struct {
    ScanPart* parts;
    int* info;
    float* jitter;
    void* base;
} PolicyScratch;

static PolicyScratch scratch_alloc(int batch, int n_parts) {
    PolicyScratch s;
    size_t parts_bytes = (size_t)batch * n_parts * sizeof(ScanPart);
    size_t info_bytes = (size_t)batch * sizeof(int);
    cudaCheck(cudaMalloc(&s.base, parts_bytes + info_bytes + (size_t)batch * sizeof(float)));
    s.parts = (ScanPart*)s.base;
    s.info = (int*)((char*)s.base + parts_bytes);
    s.jitter = (float*)((char*)s.base + parts_bytes + info_bytes);
    return s;
}

// Scans of each matrix of the batch (n_parts blocks of rows each), merged on the host.
static void scan_matrices(CholeskyScan* scans, const float* A, int batch, int D, int n_parts, PolicyScratch* s) {
    LAUNCH(chol_scan_kernel, dim3(n_parts, batch), CHOL_THREADS, CHOL_SCAN_SHARED_BYTES, s->parts, A, D);
    cudaCheckLaunch();
    ScanPart* parts = (ScanPart*)malloc((size_t)batch * n_parts * sizeof(ScanPart));
    if (!parts) { fprintf(stderr, "error: %s:%d: out of memory\n", __FILE__, __LINE__); exit(1); }
    cudaCheck(cudaMemcpy(parts, s->parts, (size_t)batch * n_parts * sizeof(ScanPart), cudaMemcpyDeviceToHost));
    for (int m = 0; m < batch; m++) {
        CholeskyScan total = {0, 0, 0, -1, -1, -1, -1};
        for (int p = 0; p < n_parts; p++) {
            const ScanPart* q = &parts[(size_t)m * n_parts + p];
            CholeskyScan part = {q->max_abs, q->max_asym, q->trace, q->asym_i, q->asym_j, q->nonfinite_i, q->nonfinite_j};
            cholesky_scan_merge(&total, &part);
        }
        scans[m] = total;
    }
    free(parts);
}

// The policy over a batch (batch = 1 with the blocked kernels for a single matrix): validate,
// factor, and retry the matrices that failed with growing jitter until each is factored or
// past the limit; the error names the first matrix (in batch order) that could not be.
static int policy_run(float* L, const float* A, int batch, int D, int batched, const CholeskyPolicy* policy_in,
                      double* jitter_out, CholeskyReport* single_report, char* err, size_t err_size) {
    CholeskyPolicy policy = policy_in ? *policy_in : CHOLESKY_POLICY_DEFAULT;
    size_t stride = (size_t)D * D;
    if (D <= 0) {
        snprintf(err, err_size, "cholesky: dimension %d is not positive", D);
        return -1;
    }
    if (batch <= 0) return 0;
    int n_parts = CEIL_DIV(D, CHOL_SCAN_ROWS);  // blocks of rows per matrix: every row is scanned
    PolicyScratch s = scratch_alloc(batch, n_parts);
    CholeskyScan* scans = (CholeskyScan*)malloc(batch * sizeof(CholeskyScan));
    CholeskyReport* reports = (CholeskyReport*)calloc(batch, sizeof(CholeskyReport));
    int* info = (int*)malloc(batch * sizeof(int));
    int* state = (int*)calloc(batch, sizeof(int));  // 0 pending, 1 factored, -1 past the limit
    float* jitter = (float*)calloc(batch, sizeof(float));
    if (!scans || !reports || !info || !state || !jitter) {
        fprintf(stderr, "error: %s:%d: out of memory\n", __FILE__, __LINE__);
        exit(1);
    }
    char what[96] = "cholesky: the matrix";
    scan_matrices(scans, A, batch, D, n_parts, &s);
    int rc = 0;
    for (int m = 0; m < batch && rc == 0; m++) {
        if (batched) snprintf(what, sizeof what, "cholesky: matrix %d of the batch of %d", m, batch);
        rc = cholesky_check_scan(&scans[m], D, &policy, what, err, err_size);
    }
    for (int pending = rc == 0 ? batch : 0; pending > 0;) {
        cudaCheck(cudaMemcpy(s.jitter, jitter, batch * sizeof(float), cudaMemcpyHostToDevice));
        size_t n = (size_t)batch * stride;
        LAUNCH(chol_copy_lower_kernel, (int)grid_stride_blocks(CEIL_DIV(n, (size_t)256), 4096), 256, 0, L, A, batch, D,
               s.jitter);
        cudaCheckLaunch();
        if (batched) cholesky_batched_factor_f32_cuda(L, batch, D, s.info);
        else cholesky_factor_f32_cuda(L, D, s.info);
        cudaCheck(cudaMemcpy(info, s.info, batch * sizeof(int), cudaMemcpyDeviceToHost));
        pending = 0;
        for (int m = 0; m < batch; m++) {
            CholeskyReport* r = &reports[m];
            if (state[m] != 0) continue;
            if (r->attempts++ == 0) r->failed_pivot = info[m];
            if (info[m] == 0) {
                state[m] = 1;
                continue;
            }
            double next = cholesky_jitter(&policy, scans[m].trace, D, r->attempts);
            if (next < 0) {
                state[m] = -1;
                continue;
            }
            r->jitter = next;
            jitter[m] = (float)next;
            pending++;
        }
    }
    int n_jittered = 0, worst = -1;
    double worst_rel = 0;
    for (int m = 0; m < batch && rc == 0; m++) {
        if (state[m] < 0) {
            if (batched) snprintf(what, sizeof what, "cholesky: matrix %d of the batch of %d", m, batch);
            cholesky_format_failure(&policy, &scans[m], D, reports[m].failed_pivot, what, err, err_size);
            rc = -1;
        } else if (reports[m].jitter > 0) {
            n_jittered++;
            double rel = reports[m].jitter * D / scans[m].trace;
            if (rel > worst_rel) worst_rel = rel, worst = m;
        }
    }
    if (rc) {
        cudaCheck(cudaMemset(L, 0, (size_t)batch * stride * sizeof(float)));
    } else if (n_jittered) {
        if (batched) cholesky_warn_batch(n_jittered, batch, D, reports[worst].jitter, worst_rel, worst);
        else cholesky_warn_jitter(&scans[0], D, &reports[0], what);
    }
    if (rc == 0 && jitter_out)
        for (int m = 0; m < batch; m++) jitter_out[m] = reports[m].jitter;
    if (single_report) *single_report = reports[0];
    cudaCheck(cudaFree(s.base));
    free(scans);
    free(reports);
    free(info);
    free(state);
    free(jitter);
    return rc;
}

int cholesky_f32_cuda(float* L, const float* A, int D, const CholeskyPolicy* policy, CholeskyReport* report,
                      char* err, size_t err_size) {
    CholeskyReport rep = {0, 0, 0};
    int rc = policy_run(L, A, 1, D, 0, policy, NULL, &rep, err, err_size);
    if (report) *report = rep;
    return rc;
}

int cholesky_batched_f32_cuda(float* L, const float* A, int batch, int D, const CholeskyPolicy* policy,
                              double* jitter, char* err, size_t err_size) {
    if (D > CHOLESKY_BATCHED_MAX_DIM) {
        snprintf(err, err_size, "cholesky: the batched CUDA kernel takes D <= %d, got %d", CHOLESKY_BATCHED_MAX_DIM, D);
        return -1;
    }
    return policy_run(L, A, batch, D, 1, policy, jitter, NULL, err, err_size);
}
