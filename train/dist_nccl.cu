// NCCL and device selection for train/dist.c. Built by nvcc for real GPUs, and under the CUDA
// emulation with its emulated NCCL (kernels/emu/emu_nccl.h); without NCCL the functions report
// "not available" and dist.c falls back to MPI.
#include "kernels/cuda_common.cuh"
#include "train/dist.h"

#ifdef TIPCAP_HAVE_NCCL
#ifdef TIPCAP_CUDA_EMU
#include "kernels/emu/emu_nccl.h"
#else
#include <nccl.h>
#endif

#include "common/dist_check.h"

int dist_nccl_unique_id(unsigned char id[128]) {
    ncclUniqueId uid;
    ncclCheck(ncclGetUniqueId(&uid));
    memcpy(id, uid.internal, 128);
    return 0;
}

void* dist_nccl_init(const unsigned char id[128], int world, int rank) {
    ncclUniqueId uid;
    memcpy(uid.internal, id, 128);
    ncclComm_t comm;
    ncclCheck(ncclCommInitRank(&comm, world, uid, rank));
    return comm;
}

void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) {
    ncclCheck(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, (ncclComm_t)comm, 0));
    cudaCheck(cudaStreamSynchronize(0));
}

void dist_nccl_destroy(void* comm) { ncclCommDestroy((ncclComm_t)comm); }
#else  // CUDA without NCCL: dist.c sums through MPI
int dist_nccl_unique_id(unsigned char id[128]) { return -1; }
void* dist_nccl_init(const unsigned char id[128], int world, int rank) { return NULL; }
void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) {}
void dist_nccl_destroy(void* comm) {}
#endif

int dist_cuda_set_device(int device) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) return -1;
    return cudaSetDevice(device % count) == cudaSuccess ? 0 : -1;
}
