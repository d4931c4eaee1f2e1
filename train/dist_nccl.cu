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

#include <unistd.h>

#include "common/dist_check.h"
#include "common/timer.h"

int dist_nccl_available(void) { return 1; }

void dist_nccl_unique_id(unsigned char id[128]) {
    ncclUniqueId uid;
    ncclCheck(ncclGetUniqueId(&uid));
    memcpy(id, uid.internal, 128);
}

// A non-blocking communicator (so that a wait can end), with a device double for sums of host scalars.
typedef struct {
    ncclComm_t comm;
    int rank;
    double timeout_s;
    double* scalar;
} NcclComm;

// `late` says what did not happen in time, `why` what may have caused it.
typedef struct {
    const char *call, *late, *why;
} Wait;

__attribute__((noreturn)) static void give_up(NcclComm* c, const Wait* w) {
    ncclCommAbort(c->comm);
    FATAL("rank %d: %s within %g s (TIPCAP_NCCL_TIMEOUT): %s", c->rank, w->late, c->timeout_s, w->why);
}

// A call on a non-blocking communicator returns ncclInProgress while NCCL works on it, and a
// collective then runs on the stream: waits for both, polling NCCL for errors (a rank that died),
// until the timeout.
static void complete(NcclComm* c, ncclResult_t r, const Wait* w) {
    double deadline = timer_now() + c->timeout_s;
    while (r == ncclInProgress) {
        if (timer_now() > deadline) give_up(c, w);
        usleep(1000);
        ncclCheck(ncclCommGetAsyncError(c->comm, &r));
    }
    if (r != ncclSuccess) FATAL("rank %d: %s: NCCL: %s", c->rank, w->call, ncclGetErrorString(r));
    cudaError_t err;
    while ((err = cudaStreamQuery(0)) == cudaErrorNotReady) {
        ncclCheck(ncclCommGetAsyncError(c->comm, &r));
        if (r != ncclSuccess && r != ncclInProgress) FATAL("rank %d: %s: NCCL: %s", c->rank, w->call, ncclGetErrorString(r));
        if (timer_now() > deadline) give_up(c, w);
        usleep(100);
    }
    cudaCheck(err);
}

void* dist_nccl_init(const unsigned char id[128], int world, int rank, double timeout_s) {
    ncclUniqueId uid;
    memcpy(uid.internal, id, 128);
    NcclComm* c = (NcclComm*)callocCheck(1, sizeof *c);
    c->rank = rank;
    c->timeout_s = timeout_s;
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    char late[100];
    snprintf(late, sizeof late, "the NCCL communicator of %d ranks did not form", world);
    Wait w = {"ncclCommInitRankConfig", late, "a rank did not start, or it was given another id"};
    complete(c, ncclCommInitRankConfig(&c->comm, world, uid, rank, &config), &w);
    cudaCheck(cudaMalloc((void**)&c->scalar, sizeof(double)));
    return c;
}

static void all_reduce(NcclComm* c, void* buf, size_t n, ncclDataType_t type) {
    Wait w = {"ncclAllReduce", "an NCCL all-reduce did not complete", "a rank has stopped, or waits elsewhere"};
    complete(c, ncclAllReduce(buf, buf, n, type, ncclSum, c->comm, 0), &w);
}

void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) { all_reduce((NcclComm*)comm, buf, n, ncclFloat); }

double dist_nccl_sum_double(void* comm, double x) {
    NcclComm* c = (NcclComm*)comm;
    cudaCheck(cudaMemcpy(c->scalar, &x, sizeof x, cudaMemcpyHostToDevice));
    all_reduce(c, c->scalar, 1, ncclDouble);
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
void* dist_nccl_init(const unsigned char id[128], int world, int rank, double timeout_s) {
    FATAL("this build has no NCCL");
}
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
