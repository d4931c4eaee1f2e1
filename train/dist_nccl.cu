// NCCL and device selection for train/dist.c. Built by nvcc for real GPUs, and under the CUDA
// emulation with its emulated NCCL (kernels/emu/emu_nccl.h); without NCCL dist_nccl_available()
// says so and dist.c sums through MPI.
#include "kernels/cuda_common.cuh"
#include "common/check.h"
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

// A communicator with a device double for sums of host scalars.
typedef struct {
    ncclComm_t comm;
    double* scalar;
} NcclComm;

void* dist_nccl_init(const unsigned char id[128], int world, int rank) {
    ncclUniqueId uid;
    memcpy(uid.internal, id, 128);
    NcclComm* c = (NcclComm*)callocCheck(1, sizeof *c);
    ncclCheck(ncclCommInitRank(&c->comm, world, uid, rank));
    cudaCheck(cudaMalloc((void**)&c->scalar, sizeof(double)));
    return c;
}

void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) {
    ncclCheck(ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, ((NcclComm*)comm)->comm, 0));
    cudaCheck(cudaStreamSynchronize(0));
}

double dist_nccl_sum_double(void* comm, double x) {
    NcclComm* c = (NcclComm*)comm;
    cudaCheck(cudaMemcpy(c->scalar, &x, sizeof x, cudaMemcpyHostToDevice));
    ncclCheck(ncclAllReduce(c->scalar, c->scalar, 1, ncclDouble, ncclSum, c->comm, 0));
    cudaCheck(cudaMemcpy(&x, c->scalar, sizeof x, cudaMemcpyDeviceToHost));
    return x;
}

void dist_nccl_destroy(void* comm) {
    NcclComm* c = (NcclComm*)comm;
    cudaCheck(cudaFree(c->scalar));
    ncclCheck(ncclCommDestroy(c->comm));
    free(c);
}
#else  // CUDA without NCCL: dist.c sums through MPI

int dist_nccl_available(void) { return 0; }
void dist_nccl_unique_id(unsigned char id[128]) { FATAL("this build has no NCCL"); }
void* dist_nccl_init(const unsigned char id[128], int world, int rank) { FATAL("this build has no NCCL"); }
void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) { FATAL("this build has no NCCL"); }
double dist_nccl_sum_double(void* comm, double x) { FATAL("this build has no NCCL"); }
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
