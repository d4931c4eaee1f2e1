// Builds without CUDA: no NCCL and no device to select (train/dist_nccl.cu otherwise).
#include "train/dist.h"

#include <stdio.h>

#include "common/check.h"

int dist_nccl_available(void) { return 0; }
void dist_nccl_unique_id(unsigned char id[128]) { FATAL("this build has no NCCL"); }
void* dist_nccl_init(const unsigned char id[128], int world, int rank, double timeout_s) {
    FATAL("this build has no NCCL");
}
void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) { FATAL("this build has no NCCL"); }
double dist_nccl_sum_double(void* comm, double x) { FATAL("this build has no NCCL"); }
void dist_nccl_destroy(void* comm) { FATAL("this build has no NCCL"); }
int dist_cuda_device_count(char* why, size_t why_size) {
    snprintf(why, why_size, "this build has no CUDA: nvcc was not found when it was built");
    return 0;
}
int dist_cuda_set_device(int device, char* why, size_t why_size) {
    snprintf(why, why_size, "this build has no CUDA");
    return -1;
}
