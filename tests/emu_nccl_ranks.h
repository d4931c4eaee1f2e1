// One rank's calls for tests/test_emu_nccl.c, in tests/emu_nccl_ranks.cu (built under the CUDA
// emulation): the emulated devices and NCCL. Each test process forks one process per rank; a rank
// holds one communicator. Functions returning int return the cudaError_t or ncclResult_t of the
// call under test (0: success). Types and operations are NCCL's values (ncclFloat = 7, ncclSum = 0).
#pragma once
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

int enr_device_count(int* count);
int enr_set_device(int device);
int enr_get_device(int* device);

void enr_unique_id(unsigned char id[128]);
// ncclCommInitRank (blocking), or ncclCommInitRankConfig with blocking = 0 and then
// ncclCommGetAsyncError polled until it is not ncclInProgress or poll_s seconds have passed (*state:
// its last answer). uninitialised_config: a config not set up with NCCL_CONFIG_INITIALIZER.
int enr_init(const unsigned char id[128], int nranks, int rank, int blocking, double poll_s, int* state);
int enr_init_uninitialised_config(const unsigned char id[128], int nranks, int rank);
int enr_destroy(void);
int enr_abort(void);
// Host arrays in and out (count elements of `type`), through device buffers; in_place: one buffer.
int enr_all_reduce(const void* in, void* out, size_t count, int type, int op, int in_place);
int enr_broadcast(const void* in, void* out, size_t count, int type, int root, int in_place);
// ncclAllReduce with a host array as sendbuff.
int enr_all_reduce_from_host(const float* in, size_t count);

#ifdef __cplusplus
}
#endif
