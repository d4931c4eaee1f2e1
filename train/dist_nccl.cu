// NCCL and device selection for train/dist.c. Built by nvcc for real GPUs, and under the CUDA
// emulation with its emulated NCCL (kernels/emu/emu_nccl.h); without NCCL dist_nccl_available()
// says so and dist.c sums through MPI.
#include "kernels/cuda_common.cuh"
#include "train/dist.h"

#ifdef TIPCAP_HAVE_NCCL
#ifdef TIPCAP_CUDA_EMU
#include "kernels/emu/emu_nccl.h"
#else
#include <nccl.h>
#endif

#include "common/dist_check.h"

int dist_nccl_available(void) { return 1; }

void dist_nccl_unique_id(unsigned char id[128]) {
    ncclUniqueId uid;
    ncclCheck(ncclGetUniqueId(&uid));
    memcpy(id, uid.internal, 128);
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
#include "common/check.h"

int dist_nccl_available(void) { return 0; }
void dist_nccl_unique_id(unsigned char id[128]) { FATAL("this build has no NCCL"); }
void* dist_nccl_init(const unsigned char id[128], int world, int rank) { FATAL("this build has no NCCL"); }
void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) { FATAL("this build has no NCCL"); }
void dist_nccl_destroy(void* comm) { FATAL("this build has no NCCL"); }
#endif

int dist_cuda_device_count(char* why, size_t why_size) {
    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err == cudaSuccess && count > 0) return count;
    snprintf(why, why_size, "cudaGetDeviceCount: %s", err != cudaSuccess ? cudaGetErrorString(err) : "0 devices");
    cudaGetLastError();  // clear the error, so later CUDA calls do not report it
    return 0;
}

int dist_cuda_set_device(int device, char* why, size_t why_size) {
    cudaError_t err = cudaSetDevice(device);
    if (err == cudaSuccess) return 0;
    snprintf(why, why_size, "%s", cudaGetErrorString(err));
    cudaGetLastError();
    return -1;
}
