// One rank's calls behind tests/test_emu_nccl.c (see tests/emu_nccl_ranks.h), under the CUDA emulation.
#include "kernels/cuda_common.cuh"
#include "kernels/emu/emu_nccl.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/emu_nccl_ranks.h"

static ncclComm_t comm;  // this rank's communicator

static size_t type_bytes(int type) {
    switch (type) {
        case ncclInt8: case ncclUint8: return 1;
        case ncclBfloat16: return 2;
        case ncclInt32: case ncclUint32: case ncclFloat: return 4;
        default: return 8;
    }
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

extern "C" int enr_device_count(int* count) { return (int)cudaGetDeviceCount(count); }
extern "C" int enr_set_device(int device) { return (int)cudaSetDevice(device); }
extern "C" int enr_get_device(int* device) { return (int)cudaGetDevice(device); }

extern "C" void enr_unique_id(unsigned char id[128]) {
    ncclUniqueId uid;
    if (ncclGetUniqueId(&uid) != ncclSuccess) memset(&uid, 0, sizeof uid);
    memcpy(id, uid.internal, 128);
}

static ncclUniqueId to_uid(const unsigned char id[128]) {
    ncclUniqueId uid;
    memcpy(uid.internal, id, 128);
    return uid;
}

extern "C" int enr_init(const unsigned char id[128], int nranks, int rank, int blocking, double poll_s, int* state) {
    if (blocking) return (int)ncclCommInitRank(&comm, nranks, to_uid(id), rank);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&comm, nranks, to_uid(id), rank, &config);
    if (r != ncclInProgress) return (int)r;
    ncclResult_t async = ncclInProgress;
    for (double end = seconds_now() + poll_s; async == ncclInProgress && seconds_now() < end; usleep(1000))
        if ((r = ncclCommGetAsyncError(comm, &async)) != ncclSuccess) return (int)r;
    *state = (int)async;
    return 0;
}

extern "C" int enr_init_uninitialised_config(const unsigned char id[128], int nranks, int rank) {
    ncclConfig_t config;
    memset(&config, 0, sizeof config);
    config.blocking = 0;
    return (int)ncclCommInitRankConfig(&comm, nranks, to_uid(id), rank, &config);
}

extern "C" int enr_destroy(void) { return (int)ncclCommDestroy(comm); }
extern "C" int enr_abort(void) { return (int)ncclCommAbort(comm); }

static void* device_buffer(const void* host, size_t bytes) {
    void* d = NULL;
    cudaCheck(cudaMalloc(&d, bytes ? bytes : 1));
    if (host && bytes) cudaCheck(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice));
    return d;
}

// A collective from host arrays: in is uploaded to `send`; the result comes back from `recv`.
template <typename F>
static int through_device(const void* in, void* out, size_t bytes, int in_place, F call) {
    void* send = device_buffer(in, bytes);
    void* recv = in_place ? send : device_buffer(NULL, bytes);
    int r = (int)call(send, recv);
    if (r == 0 && bytes) cudaCheck(cudaMemcpy(out, recv, bytes, cudaMemcpyDeviceToHost));
    cudaCheck(cudaFree(send));
    if (!in_place) cudaCheck(cudaFree(recv));
    return r;
}

extern "C" int enr_all_reduce(const void* in, void* out, size_t count, int type, int op, int in_place) {
    return through_device(in, out, count * type_bytes(type), in_place, [&](void* send, void* recv) {
        return ncclAllReduce(send, recv, count, (ncclDataType_t)type, (ncclRedOp_t)op, comm, 0);
    });
}

extern "C" int enr_broadcast(const void* in, void* out, size_t count, int type, int root, int in_place) {
    return through_device(in, out, count * type_bytes(type), in_place, [&](void* send, void* recv) {
        return ncclBroadcast(send, recv, count, (ncclDataType_t)type, root, comm, 0);
    });
}

extern "C" int enr_all_reduce_from_host(const float* in, size_t count) {
    void* recv = device_buffer(NULL, count * sizeof(float));
    int r = (int)ncclAllReduce(in, recv, count, ncclFloat, ncclSum, comm, 0);
    cudaCheck(cudaFree(recv));
    return r;
}
