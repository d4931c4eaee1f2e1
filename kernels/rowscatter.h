// Deterministic scatter-add of rows without float atomics (the backward of embedding lookups):
//   dst[target_k, :] += sum_{j in bucket k, in order} weight_j * src[src_row_j, :]
// The plan is built on the host from host copies of the indices: entries are grouped by target
// row (a stable sort, so each bucket keeps the order of its entries); the device then sums
// each bucket in that order, one thread per (bucket, column). Part of the CUDA backend.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n_buckets, n_entries;
    // One host buffer, uploaded whole: target [n_buckets] (ascending), start [n_buckets + 1],
    // src_row [n_entries], weight [n_entries] (fp32 bits).
    int32_t* packed;
    size_t packed_cap;   // int32 slots allocated
    uint64_t* sort_keys; // workspace: (target << 32 | entry)
    size_t sort_cap;
} RowScatterPlan;

// Entries e < n: target targets[e] (-1: skipped; outside [-1, n_targets): a fatal error naming
// `what` and e), source row src_rows ? src_rows[e] : e, weight weights ? weights[e] : 1.
void rowscatter_plan_build(RowScatterPlan* plan, int n, const int* targets, const int* src_rows,
                           const float* weights, int n_targets, const char* what);
void rowscatter_plan_free(RowScatterPlan* plan);
// Device bytes the plan takes once uploaded.
size_t rowscatter_device_bytes(const RowScatterPlan* plan);
// Uploads the plan to `dev_plan` (rowscatter_device_bytes) and adds: dst (fp32) [*, C], src (act) [*, C].
void rowscatter_add_cuda(float* dst, const void* src, int C, const RowScatterPlan* plan, void* dev_plan, DType act);

#ifdef __cplusplus
}
#endif
