#include "train/dist.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef TIPCAP_HAVE_MPI
#include <mpi.h>
#endif

#include "common/atomic_file.h"
#include "common/check.h"
#include "common/dist_check.h"
#include "common/log.h"

static int env_int(const char* name, int fallback) {
    const char* v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

static int launched_by_mpi(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

// The local rank as the launcher says it before MPI_Init (Open MPI, MPICH and Intel MPI, Slurm),
// or -1.
static int launcher_local_rank(void) {
    static const char* const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char* v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    return -1;
}

static void select_device(const Dist* d, const char* device) {
    if (strcmp(device, "cpu") && dist_cuda_set_device(d->local_rank) != 0 && d->world > 1)
        LOG_WARN("rank %d: could not select GPU %d", d->rank, d->local_rank);
}

// MPI_Init when launched by mpirun, or by srun with several tasks; returns whether MPI runs.
static int start_mpi(Dist* d, int* argc, char*** argv, int slurm_tasks) {
#ifdef TIPCAP_HAVE_MPI
    if (!launched_by_mpi() && slurm_tasks == 1) return 0;
    mpiCheck(MPI_Init(argc, argv));
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &d->world));
    if (slurm_tasks > 1 && d->world == 1)
        FATAL("SLURM_NTASKS is %d but MPI sees one process: launch with `srun --mpi=pmix` (or pmi2), or mpirun",
              slurm_tasks);
    return d->mpi = 1;
#else
    (void)argc;
    (void)argv;
    if (launched_by_mpi()) FATAL("launched by mpirun, but tipcap was built without MPI (install libopenmpi-dev and rebuild)");
    return 0;
#endif
}

void dist_init(Dist* d, int* argc, char*** argv, const char* device) {
    memset(d, 0, sizeof *d);
    d->world = 1;
    int slurm_tasks = env_int("SLURM_NTASKS", 1);
    // The GPU before MPI_Init, where a CUDA-aware MPI opens a context on the current device.
    int local_rank = launcher_local_rank();
    d->local_rank = local_rank >= 0 ? local_rank : 0;
    if (local_rank >= 0) select_device(d, device);
    if (!start_mpi(d, argc, argv, slurm_tasks) && slurm_tasks > 1) {
        // srun without MPI: ranks from Slurm; collectives need NCCL (GPU)
        d->world = slurm_tasks;
        d->rank = env_int("SLURM_PROCID", 0);
    }
#ifdef TIPCAP_HAVE_MPI
    if (local_rank < 0 && d->mpi) {  // a launcher that does not say: the rank among those sharing this node
        MPI_Comm node;
        mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node));
        mpiCheck(MPI_Comm_rank(node, &d->local_rank));
        MPI_Comm_free(&node);
        if (strcmp(device, "cpu"))
            LOG_WARN("rank %d: the launcher sets none of OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, SLURM_LOCALID: "
                     "GPU %d is selected after MPI_Init, where a CUDA-aware MPI may have opened a context on GPU 0",
                     d->rank, d->local_rank);
        select_device(d, device);
    }
#endif
    if (d->world > 1 && strcmp(device, "cpu")) LOG_INFO("rank %d of %d: GPU %d", d->rank, d->world, d->local_rank);
}

static int host_memory(const Backend* be) { return strcmp(be->name, "cpu") == 0; }  // cuda-emu: emulated device memory

static void share_nccl_id(Dist* d, unsigned char id[128], const char* id_file) {
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi) {
        mpiCheck(MPI_Bcast(id, 128, MPI_BYTE, 0, MPI_COMM_WORLD));
        return;
    }
#endif
    if (!id_file || !*id_file) FATAL("%d ranks without MPI: give --nccl-id-file PATH on a filesystem all ranks share", d->world);
    if (d->rank == 0) {
        atomic_write_file(id_file, id, 128);
        return;
    }
    for (int waited = 0;; waited++) {  // the other ranks wait for rank 0's file
        FILE* f = fopen(id_file, "rb");
        if (f) {
            size_t got = fread(id, 1, 128, f);
            fclose(f);
            if (got == 128) return;
        }
        if (waited > 6000) FATAL("rank %d: no NCCL id in '%s' after 10 minutes", d->rank, id_file);
        usleep(100000);
    }
}

void dist_setup_backend(Dist* d, Backend* be, const char* nccl_id_file) {
    if (d->world == 1 || host_memory(be)) {
        if (d->world > 1 && !d->mpi) FATAL("%d ranks on the %s backend need MPI for the all-reduce", d->world, be->name);
        return;
    }
    unsigned char id[128] = {0};
    if (d->rank == 0 && dist_nccl_unique_id(id) != 0) {
        if (!d->mpi) FATAL("multi-GPU training needs NCCL or MPI; this build has neither");
        LOG_WARN("built without NCCL: gradients are summed through host memory with MPI");
        return;
    }
    share_nccl_id(d, id, nccl_id_file);
    d->nccl = dist_nccl_init(id, d->world, d->rank);
    if (!d->nccl && !d->mpi) FATAL("rank %d: NCCL initialisation failed", d->rank);
    if (d->rank == 0) LOG_INFO("%d ranks: gradients summed with NCCL", d->world);
}

void dist_allreduce_sum(Dist* d, Backend* be, float* buf, size_t n) {
    if (d->world == 1) return;
    if (d->nccl) {
        dist_nccl_allreduce_sum(d->nccl, buf, n);
        return;
    }
#ifdef TIPCAP_HAVE_MPI
    float* host = buf;
    if (!host_memory(be)) {
        host = mallocCheck(n * sizeof(float));
        be->download(be, host, buf, n * sizeof(float));
    }
    for (size_t done = 0; done < n;) {  // MPI counts are int
        int chunk = (int)((n - done) > (1u << 30) ? (1u << 30) : (n - done));
        mpiCheck(MPI_Allreduce(MPI_IN_PLACE, host + done, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
        done += (size_t)chunk;
    }
    if (host != buf) {
        be->upload(be, buf, host, n * sizeof(float));
        free(host);
    }
#else
    (void)be;
    (void)buf;
    (void)n;
    FATAL("all-reduce across %d ranks needs MPI or NCCL", d->world);
#endif
}

double dist_sum_double(const Dist* d, double x) {
    if (d->world == 1) return x;
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi) {
        double sum;
        mpiCheck(MPI_Allreduce(&x, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
        return sum;
    }
#endif
    FATAL("summing across %d ranks needs MPI", d->world);
}

void dist_barrier(const Dist* d) {
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi) mpiCheck(MPI_Barrier(MPI_COMM_WORLD));
#else
    (void)d;
#endif
}

void dist_finalize(Dist* d) {
    if (d->nccl) dist_nccl_destroy(d->nccl);
    d->nccl = NULL;
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}
