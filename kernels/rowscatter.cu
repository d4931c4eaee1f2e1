#include "kernels/cuda_common.cuh"

// The row scatter-add of rowscatter.h: plan building on the host, one kernel on the device.
#include <stdlib.h>
#include <string.h>

#include "common/check.h"
#include "kernels/rowscatter.h"

#define ROWSCATTER_THREADS 128

static int compare_keys(const void* a, const void* b) {
    uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
    return x < y ? -1 : x > y;
}

void rowscatter_plan_build(RowScatterPlan* plan, int n, const int* targets, const int* src_rows,
                           const float* weights, int n_targets, const char* what) {
    if ((size_t)n > plan->sort_cap) {
        plan->sort_cap = (size_t)n;
        plan->sort_keys = (uint64_t*)reallocCheck(plan->sort_keys, plan->sort_cap * sizeof(uint64_t));
    }
    int n_entries = 0;
    for (int e = 0; e < n; e++) {
        if (targets[e] == -1) continue;
        if (targets[e] < -1 || targets[e] >= n_targets)
            FATAL("%s: index %d of entry %d outside [-1, %d)", what, targets[e], e, n_targets);
        plan->sort_keys[n_entries++] = ((uint64_t)targets[e] << 32) | (uint32_t)e;
    }
    qsort(plan->sort_keys, (size_t)n_entries, sizeof(uint64_t), compare_keys);  // keys are unique: stable
    int n_buckets = 0;
    for (int k = 0; k < n_entries; k++)
        n_buckets += k == 0 || (plan->sort_keys[k] >> 32) != (plan->sort_keys[k - 1] >> 32);
    size_t slots = 2 * (size_t)n_buckets + 1 + 2 * (size_t)n_entries;
    if (slots > plan->packed_cap) {
        plan->packed_cap = slots;
        plan->packed = (int32_t*)reallocCheck(plan->packed, plan->packed_cap * sizeof(int32_t));
    }
    int32_t* target = plan->packed;
    int32_t* start = target + n_buckets;
    int32_t* src_row = start + n_buckets + 1;
    float* weight = (float*)(src_row + n_entries);
    int bucket = -1;
    for (int k = 0; k < n_entries; k++) {
        int t = (int)(plan->sort_keys[k] >> 32), e = (int)(uint32_t)plan->sort_keys[k];
        if (bucket < 0 || t != target[bucket]) {
            target[++bucket] = t;
            start[bucket] = k;
        }
        src_row[k] = src_rows ? src_rows[e] : e;
        weight[k] = weights ? weights[e] : 1.0f;
    }
    start[n_buckets] = n_entries;
    plan->n_buckets = n_buckets;
    plan->n_entries = n_entries;
}

void rowscatter_plan_free(RowScatterPlan* plan) {
    free(plan->packed);
    free(plan->sort_keys);
    memset(plan, 0, sizeof *plan);
}

size_t rowscatter_device_bytes(const RowScatterPlan* plan) {
    return (2 * (size_t)plan->n_buckets + 1 + 2 * (size_t)plan->n_entries) * sizeof(int32_t);
}

// grid (buckets, column tiles): one thread per (bucket, column) sums the bucket's rows in order
template <typename T>
__global__ void rowscatter_kernel(float* dst, const T* src, int C, const int32_t* packed, int n_buckets,
                                  int n_entries) {
    const int32_t* target = packed;
    const int32_t* start = target + n_buckets;
    const int32_t* src_row = start + n_buckets + 1;
    const float* weight = (const float*)(src_row + n_entries);
    int k = blockIdx.x;
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int j = start[k]; j < start[k + 1]; j++) acc += weight[j] * to_float(src[(size_t)src_row[j] * C + c]);
    dst[(size_t)target[k] * C + c] += acc;
}

void rowscatter_add_cuda(float* dst, const void* src, int C, const RowScatterPlan* plan, void* dev_plan, DType act) {
    if (plan->n_buckets == 0 || C <= 0) return;
    // Ordered after every earlier kernel on the stream, so a plan still in use is never overwritten.
    cudaCheck(cudaMemcpy(dev_plan, plan->packed, rowscatter_device_bytes(plan), cudaMemcpyHostToDevice));
    dim3 grid(plan->n_buckets, CEIL_DIV(C, ROWSCATTER_THREADS));
    if (act == DTYPE_BF16)
        LAUNCH(rowscatter_kernel<__nv_bfloat16>, grid, ROWSCATTER_THREADS, 0, dst, (const __nv_bfloat16*)src, C,
               (const int32_t*)dev_plan, plan->n_buckets, plan->n_entries);
    else
        LAUNCH(rowscatter_kernel<float>, grid, ROWSCATTER_THREADS, 0, dst, (const float*)src, C,
               (const int32_t*)dev_plan, plan->n_buckets, plan->n_entries);
    cudaCheckLaunch();
}
