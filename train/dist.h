// Data parallelism: one process per GPU (or per CPU job), gradients summed across processes.
// Ranks come from MPI when launched by mpirun (or srun with an MPI that speaks PMI/PMIx), else
// from Slurm's SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID (srun without MPI: --nccl-id-file). Device buffers are summed with NCCL
// (its unique id shared through MPI, or through a file on a shared filesystem when there is no
// MPI); host buffers (the CPU backend) with MPI_Allreduce.
#pragma once
#include <stddef.h>

#include "kernels/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int rank, world, local_rank;
    int gpu;        // this rank's GPU (selected); -1: the CPU backend
    int mpi;        // MPI is initialised and carries the collectives
    const char* nccl_id_file;  // --nccl-id-file: the NCCL id of ranks without MPI
    double timeout_s;          // TIPCAP_NCCL_TIMEOUT: how long a rank waits for the others
    void* nccl;     // NCCL communicator for a GPU backend with world > 1
} Dist;

// Fills d from the launcher's environment; initialises MPI when launched by mpirun, or by srun
// with several tasks unless nccl_id_file (--nccl-id-file, may be NULL) is given: then the ranks
// come from SLURM_PROCID / SLURM_NTASKS and NCCL carries every collective. For
// run.device `device` (auto | cuda | cpu) other than "cpu", first selects GPU local_rank, the
// launcher's local rank (a CUDA-aware MPI opens a context on the current device in MPI_Init).
// All ranks then agree: every rank on its GPU, or every rank on the CPU (auto, no GPU anywhere);
// otherwise (a rank without a usable GPU, local rank >= the node's GPU count) every rank stops
// and rank 0 says why.
void dist_init(Dist* d, int* argc, char*** argv, const char* device, const char* nccl_id_file);
// After the backend exists: NCCL for a GPU backend with world > 1 (the unique id through MPI,
// or written by rank 0 to nccl_id_file with the job it belongs to, read by the others, removed
// once the communicator has formed). A rank that waits longer than timeout_s stops with an error.
void dist_setup_backend(Dist* d);
// In-place sum across ranks of n floats of backend memory.
void dist_allreduce_sum(Dist* d, Backend* be, float* buf, size_t n);
// Sums of host scalars across ranks (fp64: exact for counts and deterministic for a fixed world),
// through MPI, or NCCL where there is no MPI.
double dist_sum_double(const Dist* d, double x);
void dist_finalize(Dist* d);

// CUDA and NCCL glue (train/dist_nccl.cu; train/dist_nocuda.c in builds without CUDA).
// The GPU count; 0 with the reason in why.
int dist_cuda_device_count(char* why, size_t why_size);
// 0, or -1 with the reason in why.
int dist_cuda_set_device(int device, char* why, size_t why_size);
// Whether the build has NCCL; the other NCCL calls exit with an error when it has not.
int dist_nccl_available(void);
void dist_nccl_unique_id(unsigned char id[128]);
// The communicator (non-blocking NCCL); the init and every collective stop with a clear error
// after timeout_s without progress (the communicator aborted) or when NCCL reports one.
void* dist_nccl_init(const unsigned char id[128], int world, int rank, double timeout_s);
void dist_nccl_allreduce_sum(void* comm, float* buf, size_t n);
double dist_nccl_sum_double(void* comm, double x);
void dist_nccl_destroy(void* comm);

#ifdef __cplusplus
}
#endif
