// Builds without CUDA: no NCCL and no device to select (train/dist_nccl.cu otherwise).
#include "train/dist.h"

int dist_nccl_unique_id(unsigned char id[128]) { return -1; }
void* dist_nccl_init(const unsigned char id[128], int world, int rank) { return NULL; }
void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n) {}
void dist_nccl_destroy(void* comm) {}
int dist_cuda_set_device(int device) { return -1; }
