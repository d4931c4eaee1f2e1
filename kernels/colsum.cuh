// Deterministic column sums of an [N, C] matrix whose elements a functor produces: the two-pass
// reduction behind every parameter gradient that sums over rows (matmul bias, layer-norm gain
// and bias, the Gaussian mapping's mu). No float atomics: the order of every sum is fixed.
//   pass 1: block (32 columns x 8 row lanes) per (column tile, chunk of COLSUM_CHUNK_ROWS rows);
//           row lane y sums rows y, y + 8, ... of its chunk, then lane 0 adds the 8 lanes in order
//           -> partial [n_chunks, NQ, C]
//   pass 2: one thread per (q, column) adds the chunks in order into out_q[c] (+=)
// F provides `static constexpr int NQ` (quantities summed at once, 1 or 2) and
//   __device__ void operator()(int row, int col, float* acc) const   (adds into acc[0..NQ-1]).
#pragma once
#include "kernels/cuda_common.cuh"

#define COLSUM_CHUNK_ROWS 128
#define COLSUM_COLS 32
#define COLSUM_ROW_LANES 8

// Floats of scratch that colsum() needs for N rows, C columns and NQ quantities.
static inline size_t colsum_scratch_floats(int N, int C, int NQ) {
    return (size_t)CEIL_DIV(N, COLSUM_CHUNK_ROWS) * (size_t)NQ * (size_t)C;
}

template <typename F>
__global__ void colsum_partial_kernel(float* partial, int N, int C, F f) {
    __shared__ float lane_sums[F::NQ][COLSUM_ROW_LANES][COLSUM_COLS];
    int c = blockIdx.x * COLSUM_COLS + threadIdx.x;
    int chunk = blockIdx.y;
    int row_end = min(N, (chunk + 1) * COLSUM_CHUNK_ROWS);
    float acc[F::NQ];
    for (int q = 0; q < F::NQ; q++) acc[q] = 0.0f;
    if (c < C)
        for (int r = chunk * COLSUM_CHUNK_ROWS + threadIdx.y; r < row_end; r += COLSUM_ROW_LANES) f(r, c, acc);
    for (int q = 0; q < F::NQ; q++) lane_sums[q][threadIdx.y][threadIdx.x] = acc[q];
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int q = 0; q < F::NQ; q++) {
            float s = 0.0f;
            for (int y = 0; y < COLSUM_ROW_LANES; y++) s += lane_sums[q][y][threadIdx.x];
            partial[((size_t)chunk * F::NQ + q) * C + c] = s;
        }
    }
}

// out0 [C] += sums of quantity 0, out1 [C] += quantity 1 (either may be NULL).
template <int NQ>
__global__ void colsum_finish_kernel(float* out0, float* out1, const float* partial, int n_chunks, int C) {
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= NQ * C) return;
    int q = idx / C, c = idx % C;
    float* out = q == 0 ? out0 : out1;
    if (!out) return;
    float s = 0.0f;
    for (int k = 0; k < n_chunks; k++) s += partial[((size_t)k * NQ + q) * C + c];
    out[c] += s;
}

// out0/out1 [C] += column sums over N rows of f's quantities; scratch: colsum_scratch_floats(N, C, F::NQ).
template <typename F>
void colsum(float* out0, float* out1, int N, int C, F f, float* scratch) {
    if (N <= 0 || C <= 0) return;
    int n_chunks = CEIL_DIV(N, COLSUM_CHUNK_ROWS);
    dim3 grid(CEIL_DIV(C, COLSUM_COLS), n_chunks);
    dim3 block(COLSUM_COLS, COLSUM_ROW_LANES);
    LAUNCH(colsum_partial_kernel<F>, grid, block, 0, scratch, N, C, f);
    cudaCheckLaunch();
    const int threads = 256;
    LAUNCH(colsum_finish_kernel<F::NQ>, CEIL_DIV(F::NQ * C, threads), threads, 0, out0, out1, scratch, n_chunks, C);
    cudaCheckLaunch();
}
