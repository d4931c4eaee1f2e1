#include "kernels/cuda_common.cuh"

// CUDA: mean of table rows per bag (see bag_mean.h); the backward is a row scatter (rowscatter.h).
#include "kernels/bag_mean.h"

#define BAG_MEAN_THREADS 256

// grid (bags, column tiles): one thread per (bag, column) adds the bag's rows in order
template <typename T>
__global__ void bag_mean_forward_kernel(T* out, const T* table, const int* ids, const int* offsets, int C) {
    int bag = blockIdx.x;
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    int begin = offsets[bag], end = offsets[bag + 1];
    float acc = 0.0f;
    for (int j = begin; j < end; j++) acc += to_float(table[(size_t)ids[j] * C + c]);
    out[(size_t)bag * C + c] = from_float<T>(end > begin ? acc / (float)(end - begin) : 0.0f);
}

void bag_mean_forward_cuda(void* out, const void* table, const int* ids, const int* offsets, int n_bags, int C,
                           DType act) {
    if (n_bags <= 0) return;
    dim3 grid(n_bags, CEIL_DIV(C, BAG_MEAN_THREADS));
    if (act == DTYPE_BF16)
        LAUNCH(bag_mean_forward_kernel<__nv_bfloat16>, grid, BAG_MEAN_THREADS, 0, (__nv_bfloat16*)out,
               (const __nv_bfloat16*)table, ids, offsets, C);
    else
        LAUNCH(bag_mean_forward_kernel<float>, grid, BAG_MEAN_THREADS, 0, (float*)out, (const float*)table, ids,
               offsets, C);
    cudaCheckLaunch();
}
