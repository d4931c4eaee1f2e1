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
#include "common/timer.h"

static int env_int(const char* name, int fallback) {
    const char* v = getenv(name);
    return v && *v ? atoi(v) : fallback;
}

// TIPCAP_NCCL_TIMEOUT: seconds a rank waits for the others (the id file, the communicator, each
// collective) before it stops with an error.
static double timeout_from_env(void) {
    const char* v = getenv("TIPCAP_NCCL_TIMEOUT");
    if (!v || !*v) return 600;
    char* end;
    double seconds = strtod(v, &end);
    if (*end || !(seconds > 0)) FATAL("TIPCAP_NCCL_TIMEOUT=%s: give the seconds a rank waits for the others", v);
    return seconds;
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

// What run.device gives this rank: its GPU, none (the CPU), or a GPU it cannot use; why in words.
enum { GPU_NOT_ASKED, GPU_SELECTED, GPU_NONE, GPU_UNUSABLE };
typedef struct {
    int state;
    char why[256];
} GpuChoice;

// Selects GPU local_rank unless run.device is "cpu".
static GpuChoice choose_gpu(const char* device, int local_rank) {
    GpuChoice c = {GPU_NOT_ASKED, ""};
    if (!strcmp(device, "cpu")) return c;
    char reason[160];
    int count = dist_cuda_device_count(reason, sizeof reason);
    if (count == 0) {
        c.state = GPU_NONE;
        snprintf(c.why, sizeof c.why, "no GPU (%s)", reason);
    } else if (local_rank >= count) {  // two ranks on one GPU: NCCL refuses it
        c.state = GPU_UNUSABLE;
        snprintf(c.why, sizeof c.why, "local rank %d, but its node has %d GPU%s (one process per GPU: start at most "
                 "%d per node)", local_rank, count, count == 1 ? "" : "s", count);
    } else if (dist_cuda_set_device(local_rank, reason, sizeof reason)) {
        c.state = GPU_UNUSABLE;
        snprintf(c.why, sizeof c.why, "cudaSetDevice(%d): %s", local_rank, reason);
    } else {
        c.state = GPU_SELECTED;
    }
    return c;
}

// Every rank stops; rank 0 says why, once. Under MPI the others wait until it has said it: a
// launcher that ends the job at the first exit must not cut the message.
__attribute__((noreturn)) static void stop_all(const Dist* d, const char* msg) {
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi && d->world > 1) {
        if (d->rank == 0) fprintf(stderr, "error: %s:%d: %s\n", __FILE__, __LINE__, msg);
        fflush(stderr);
        MPI_Barrier(MPI_COMM_WORLD);
        MPI_Finalize();
        exit(1);
    }
#endif
    FATAL("%s", msg);
}

// Appends "rank R has WHY" (has_form) or "rank R: WHY" for each rank in `state`, ", "-separated.
static void list_ranks(char* msg, size_t cap, const GpuChoice* all, const int* ranks, int n, int state, int has_form) {
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (all[i].state != state) continue;
        size_t len = strlen(msg);
        snprintf(msg + len, cap - len, "%srank %d%s%s", first ? "" : ", ", ranks[i], has_form ? " has " : ": ",
                 all[i].why);
        first = 0;
    }
}

// The backend all ranks use: d->gpu = local_rank when every rank has selected its GPU, -1 when
// none asked for one or (auto) none has one; anything else stops every rank. Without MPI a rank
// knows only its own choice, and NCCL (a GPU) is the only way to reach the others.
static void agree_on_backend(Dist* d, const char* device, GpuChoice mine) {
    int known = d->mpi ? d->world : 1;
    GpuChoice* all = callocCheck((size_t)known, sizeof *all);
    int* ranks = callocCheck((size_t)known, sizeof *ranks);
    all[0] = mine;
    ranks[0] = d->rank;
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi && d->world > 1) {
        mpiCheck(MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, MPI_COMM_WORLD));
        for (int r = 0; r < known; r++) ranks[r] = r;
    }
#endif
    int count[4] = {0, 0, 0, 0};
    for (int i = 0; i < known; i++) count[all[i].state]++;
    char msg[4096] = "";
    if (count[GPU_UNUSABLE]) {
        list_ranks(msg, sizeof msg, all, ranks, known, GPU_UNUSABLE, 0);
    } else if (count[GPU_NONE] && (!strcmp(device, "cuda") || (!d->mpi && d->world > 1))) {
        snprintf(msg, sizeof msg, "run.device=%s: ", device);
        list_ranks(msg, sizeof msg, all, ranks, known, GPU_NONE, 1);
        if (!d->mpi && d->world > 1) {
            size_t len = strlen(msg);
            snprintf(msg + len, sizeof msg - len, ": %d ranks without MPI need a GPU each (NCCL)", d->world);
        }
    } else if (count[GPU_NONE] && count[GPU_SELECTED]) {
        snprintf(msg, sizeof msg, "run.device=auto: every rank must use the same backend, but ");
        list_ranks(msg, sizeof msg, all, ranks, known, GPU_NONE, 1);
        strcat(msg, ", while");
        for (int i = 0, n = 0; i < known; i++)
            if (all[i].state == GPU_SELECTED) {
                size_t len = strlen(msg);
                snprintf(msg + len, sizeof msg - len, "%s %d", n++ ? "," : count[GPU_SELECTED] > 1 ? " ranks" : " rank",
                         ranks[i]);
            }
        size_t len = strlen(msg);
        snprintf(msg + len, sizeof msg - len, " %s one: give every rank a GPU, or set run.device=cpu",
                 count[GPU_SELECTED] > 1 ? "have" : "has");
    }
    free(all);
    free(ranks);
    if (msg[0]) stop_all(d, msg);
    d->gpu = mine.state == GPU_SELECTED ? d->local_rank : -1;
    if (mine.state == GPU_NONE && d->rank == 0) LOG_INFO("run.device=auto: %s; training on the CPU", mine.why);
    if (d->world > 1 && d->gpu >= 0) LOG_INFO("rank %d of %d: GPU %d", d->rank, d->world, d->gpu);
}

// MPI_Init when launched by mpirun, or by srun with several tasks and no --nccl-id-file; returns
// whether MPI runs.
static int start_mpi(Dist* d, int* argc, char*** argv, int slurm_tasks) {
#ifdef TIPCAP_HAVE_MPI
    if (!launched_by_mpi() && (slurm_tasks == 1 || d->nccl_id_file)) return 0;
    mpiCheck(MPI_Init(argc, argv));
    mpiCheck(MPI_Comm_rank(MPI_COMM_WORLD, &d->rank));
    mpiCheck(MPI_Comm_size(MPI_COMM_WORLD, &d->world));
    if (slurm_tasks > 1 && d->world == 1)
        FATAL("SLURM_NTASKS is %d but MPI sees one process: launch with `srun --mpi=pmix` (or pmi2) or mpirun, or "
              "give --nccl-id-file PATH for srun without MPI", slurm_tasks);
    return d->mpi = 1;
#else
    (void)argc;
    (void)argv;
    if (launched_by_mpi()) FATAL("launched by mpirun, but tipcap was built without MPI (install libopenmpi-dev and rebuild)");
    return 0;
#endif
}

void dist_init(Dist* d, int* argc, char*** argv, const char* device, const char* nccl_id_file) {
    memset(d, 0, sizeof *d);
    d->world = 1;
    d->gpu = -1;
    d->nccl_id_file = nccl_id_file && *nccl_id_file ? nccl_id_file : NULL;
    d->timeout_s = timeout_from_env();
    int slurm_tasks = env_int("SLURM_NTASKS", 1);
    // The GPU before MPI_Init, where a CUDA-aware MPI opens a context on the current device.
    int local_rank = launcher_local_rank();
    d->local_rank = local_rank >= 0 ? local_rank : 0;
    GpuChoice mine = {GPU_NOT_ASKED, ""};
    if (local_rank >= 0) mine = choose_gpu(device, d->local_rank);
    if (!start_mpi(d, argc, argv, slurm_tasks) && slurm_tasks > 1) {
        // srun without MPI: ranks from Slurm; collectives need NCCL (GPU)
        d->world = slurm_tasks;
        d->rank = env_int("SLURM_PROCID", 0);
    }
    if (local_rank < 0) {  // one process without a launcher (GPU 0), or a launcher that does not say
#ifdef TIPCAP_HAVE_MPI
        if (d->mpi) {  // the rank among those sharing this node
            MPI_Comm node;
            mpiCheck(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node));
            mpiCheck(MPI_Comm_rank(node, &d->local_rank));
            MPI_Comm_free(&node);
            if (strcmp(device, "cpu"))
                LOG_WARN("rank %d: the launcher sets none of OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, "
                         "SLURM_LOCALID: GPU %d is selected after MPI_Init, where a CUDA-aware MPI may have opened "
                         "a context on GPU 0", d->rank, d->local_rank);
        }
#endif
        mine = choose_gpu(device, d->local_rank);
    }
    agree_on_backend(d, device, mine);
}

// The job an NCCL id file belongs to, so that no rank takes an earlier job's id (NCCL would wait
// forever for peers that are gone): SLURM_JOB_ID.SLURM_STEP_ID (SLURM_STEPID in older Slurm),
// "+rN" for the Nth requeue (SLURM_RESTART_COUNT); where Slurm sets no job id, TIPCAP_JOB_ID.
static void job_tag(char* tag, size_t cap) {
    const char* job = getenv("SLURM_JOB_ID");
    const char* step = getenv("SLURM_STEP_ID") ? getenv("SLURM_STEP_ID") : getenv("SLURM_STEPID");
    int restarts = env_int("SLURM_RESTART_COUNT", 0);
    const char* own = getenv("TIPCAP_JOB_ID");
    if (job && *job) {
        int n = snprintf(tag, cap, "%s.%s", job, step && *step ? step : "batch");
        if (restarts > 0) snprintf(tag + n, cap - (size_t)n, "+r%d", restarts);
    } else if (own && *own) {
        snprintf(tag, cap, "%s", own);
    } else {
        FATAL("--nccl-id-file: neither SLURM_JOB_ID nor TIPCAP_JOB_ID is set: the id file is tied to the job "
              "(srun sets SLURM_JOB_ID; other launchers: TIPCAP_JOB_ID=a string unique to the launch)");
    }
}

// The id file: one line "tipcap-nccl-id job=TAG world=N", then the 128 bytes of the id.
static int id_file_header(char* out, size_t cap, const char* tag, int world) {
    return snprintf(out, cap, "tipcap-nccl-id job=%s world=%d\n", tag, world);
}

// What an id file that is not ours holds, for the error after the timeout.
static void describe_id_file(const char* text, size_t len, char* out, size_t cap) {
    char job[128];
    int world;
    if (!len) snprintf(out, cap, "the file is missing or empty");
    else if (sscanf(text, "tipcap-nccl-id job=%127s world=%d", job, &world) == 2)
        snprintf(out, cap, "it holds job %s's (%d ranks): an earlier job's file, or rank 0 has not written it", job,
                 world);
    else snprintf(out, cap, "it is not an NCCL id file of tipcap-train");
}

// Rank 0's unique id to the others: through MPI, or through d->nccl_id_file, tied to the job.
static void share_nccl_id(Dist* d, unsigned char id[128]) {
    const char* id_file = d->nccl_id_file;
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi) {
        mpiCheck(MPI_Bcast(id, 128, MPI_BYTE, 0, MPI_COMM_WORLD));
        return;
    }
#endif
    if (!id_file) FATAL("%d ranks without MPI: give --nccl-id-file PATH on a filesystem all ranks share", d->world);
    char tag[160], header[256];
    job_tag(tag, sizeof tag);
    size_t header_len = (size_t)id_file_header(header, sizeof header, tag, d->world);
    if (d->rank == 0) {
        unsigned char content[256 + 128];
        memcpy(content, header, header_len);
        memcpy(content + header_len, id, 128);
        atomic_write_file(id_file, content, header_len + 128);
        return;
    }
    double deadline = timer_now() + d->timeout_s;
    char held[300];
    for (;;) {  // rank 0 writes the file when it starts; an earlier job's may lie there until then
        size_t len = 0;
        char* text = NULL;
        FILE* f = fopen(id_file, "rb");
        if (f) {
            fclose(f);
            text = readFileCheck(id_file, &len);
        }
        int ours = len == header_len + 128 && !memcmp(text, header, header_len);
        if (ours) memcpy(id, text + header_len, 128);
        else describe_id_file(text ? text : "", len, held, sizeof held);
        free(text);
        if (ours) return;
        if (timer_now() > deadline)
            FATAL("rank %d: no NCCL id of job %s in %s after %g s: %s. Rank 0 writes it when it starts: check that "
                  "it runs and that the path is on a filesystem every rank sees (TIPCAP_NCCL_TIMEOUT=seconds waits "
                  "longer)", d->rank, tag, id_file, d->timeout_s, held);
        usleep(100000);
    }
}

void dist_setup_backend(Dist* d) {
    if (d->world == 1 || d->gpu < 0) {
        if (d->world > 1 && !d->mpi) FATAL("%d ranks on the CPU backend need MPI for the all-reduce", d->world);
        return;
    }
    if (!dist_nccl_available()) {  // a property of the build: every rank takes this path
        if (!d->mpi) FATAL("rank %d: multi-GPU training needs NCCL or MPI; this build has neither", d->rank);
        if (d->rank == 0) LOG_WARN("built without NCCL: gradients are summed through host memory with MPI");
        return;
    }
    unsigned char id[128] = {0};
    if (d->rank == 0) dist_nccl_unique_id(id);
    share_nccl_id(d, id);
    d->nccl = dist_nccl_init(id, d->world, d->rank, d->timeout_s);
    // Every rank has the id once the communicator has formed: the file has served
    if (d->nccl_id_file && !d->mpi && d->rank == 0 && unlink(d->nccl_id_file) && errno != ENOENT)
        LOG_WARN("could not remove the NCCL id file %s: %s", d->nccl_id_file, strerror(errno));
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
    if (d->gpu >= 0) {
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
    if (d->nccl) return dist_nccl_sum_double(d->nccl, x);
    FATAL("summing across %d ranks needs MPI or NCCL", d->world);
}

void dist_finalize(Dist* d) {
    if (d->nccl) dist_nccl_destroy(d->nccl);
    d->nccl = NULL;
#ifdef TIPCAP_HAVE_MPI
    if (d->mpi) MPI_Finalize();
#endif
    d->mpi = 0;
}
