// Data-parallel training on the CUDA backend without a GPU: bin/emu/tipcap-train (make emu: the CUDA
// emulation with its emulated NCCL and TIPCAP_EMU_DEVICES devices) on a few steps of a tiny model,
// launched three ways, each giving the losses of one process: mpirun -np 2 (MPI + NCCL); two
// processes started as srun starts them without MPI, the NCCL id through --nccl-id-file where an
// earlier job's id file lies; bin/emu-nonccl/tipcap-train (built without NCCL) under mpirun -np 2.
// And what must stop with one clear error instead of hanging: a rank without a GPU under
// run.device=auto, more ranks on a node than GPUs, a communicator whose peers never come, an
// earlier job's id file; and the device is selected before MPI_Init.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/check.h"
#include "tests/harness.h"
#include "tests/train_fixture.h"

#define STEPS 6
// Every run: the CUDA backend, STEPS steps, one checkpoint; the command is cut short after 120 s
// (a hang is a failure, not a stuck test).
#define TRAIN_ARGS "--config %s --set run.device=cuda --set train.steps=6 --set train.checkpoint_every=6"
#define MPIRUN "OMP_NUM_THREADS=1 timeout 120 mpirun --allow-run-as-root --oversubscribe -np 2 -x OMP_NUM_THREADS "
// What srun sets for each task of job step JOB.0, without MPI.
#define SRUN_ENV(job) "OMP_NUM_THREADS=1 SLURM_NTASKS=2 SLURM_JOB_ID=" #job " SLURM_STEP_ID=0 "

static char one[128];  // the run of one process, which every launch must reproduce

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int have_mpirun(void) { return system("command -v mpirun >/dev/null 2>&1") == 0; }

// Paths in the scratch directory: dir/NAME and dir/NAME.log.
static void scratch(char* run, char* log, size_t cap, const char* name) {
    snprintf(run, cap, "%s/%s", dir, name);
    snprintf(log, cap, "%s/%s.log", dir, name);
}

// The losses of `run` against one process's, step by step (relative 1e-5).
static void check_losses_of_one_process(const char* run, const char* how) {
    double worst = 0;
    for (long s = 1; s <= STEPS; s++) {
        double a = metric_loss(one, s), b = metric_loss(run, s);
        worst = fmax(worst, fabs(a - b) / fabs(a));
        CHECK(fabs(a - b) <= 1e-5 * fabs(a), "%s: step %ld: loss %.8f with one process, %.8f with two", how, s, a, b);
    }
    printf("  %s: worst relative loss difference to one process %.2e over %d steps\n", how, worst, STEPS);
}

static void check_log_says(const char* log, const char* want, const char* what) {
    char* text = slurp(log);
    CHECK(strstr(text, want) != NULL, "%s: %s does not say \"%s\":\n%s", what, log, want, text);
    free(text);
}

// Lines of the log that start with "error:" (one failure must print one).
static int error_lines(const char* log) {
    char* text = slurp(log);
    int n = 0;
    for (char* line = text; line; line = strchr(line, '\n')) {
        if (*line == '\n') line++;
        if (!strncmp(line, "error:", 6)) n++;
    }
    free(text);
    return n;
}

static void test_one_process(void) {
    char log[128];
    scratch(one, log, sizeof one, "one");
    REQUIRE(sh(log, "OMP_NUM_THREADS=1 timeout 120 bin/emu/tipcap-train " TRAIN_ARGS " --set run.dir=%s", config, one) == 0,
            "one process on the emulated GPU failed (see %s)", log);
    REQUIRE(isfinite(metric_loss(one, STEPS)), "no loss at step %d in %s/metrics.csv", STEPS, one);
}

// (a) mpirun -np 2 on two emulated GPUs, gradients summed by the emulated NCCL.
static void test_mpirun_nccl(void) {
    if (!have_mpirun()) SKIP("mpirun not installed");
    char run[128], log[128];
    scratch(run, log, sizeof run, "mpirun_nccl");
    int rc = sh(log, "TIPCAP_EMU_DEVICES=2 " MPIRUN "-x TIPCAP_EMU_DEVICES bin/emu/tipcap-train " TRAIN_ARGS
                     " --set run.dir=%s", config, run);
    REQUIRE(rc == 0, "mpirun -np 2 bin/emu/tipcap-train failed (see %s)", log);
    check_log_says(log, "2 ranks: gradients summed with NCCL", "mpirun");
    check_losses_of_one_process(run, "mpirun -np 2, NCCL");
}

// An earlier job's id file at `path`: rank 0 of job `job` started alone writes it, then stops when
// rank 1 does not come within TIPCAP_NCCL_TIMEOUT=1 s, saying so (and not hanging).
static void earlier_job_id_file(const char* path, int job) {
    char log[160];
    snprintf(log, sizeof log, "%s/job%d.log", dir, job);
    double start = now_s();
    int rc = sh(log, "OMP_NUM_THREADS=1 SLURM_NTASKS=2 SLURM_JOB_ID=%d SLURM_STEP_ID=0 SLURM_PROCID=0 SLURM_LOCALID=0 "
                     "TIPCAP_EMU_DEVICES=2 TIPCAP_NCCL_TIMEOUT=1 timeout 60 bin/emu/tipcap-train " TRAIN_ARGS
                     " --set run.dir=%s/job%d --nccl-id-file %s", job, config, dir, job, path);
    double seconds = now_s() - start;
    CHECK(rc != 0 && rc != 124, "rank 0 of job %d alone: exit status %d (want a clear error; 124: it hung) (see %s)",
          job, rc, log);
    check_log_says(log, "rank 0: the NCCL communicator of 2 ranks did not form within 1 s", "rank 0 alone");
    CHECK(seconds < 30, "rank 0 alone took %.0f s to give up after a 1 s timeout", seconds);
    CHECK(access(path, F_OK) == 0, "rank 0 of job %d left no id file at %s", job, path);
}

static void test_comm_init_times_out(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/alone.nccl", dir);
    earlier_job_id_file(path, 6000);
}

// (b) srun without MPI: ranks from SLURM_*, the id through a file where an earlier job's lies;
// rank 1 starts first (it must not take the earlier job's id), rank 0 a second later.
static void test_srun_without_mpi(void) {
    char run[128], log[128], id_file[128];
    scratch(run, log, sizeof run, "srun");
    snprintf(id_file, sizeof id_file, "%s/srun.nccl", dir);
    earlier_job_id_file(id_file, 7000);
    int rc = sh(log, "export " SRUN_ENV(7001) "TIPCAP_EMU_DEVICES=2; "
                "SLURM_PROCID=1 SLURM_LOCALID=1 timeout 120 bin/emu/tipcap-train " TRAIN_ARGS " --set run.dir=%s "
                "--nccl-id-file %s & sleep 1; "
                "SLURM_PROCID=0 SLURM_LOCALID=0 timeout 120 bin/emu/tipcap-train " TRAIN_ARGS " --set run.dir=%s "
                "--nccl-id-file %s; rank0=$?; wait $!; rank1=$?; exit $((rank0 | rank1))",
                config, run, id_file, config, run, id_file);
    REQUIRE(rc == 0, "two srun-style ranks failed (see %s)", log);
    check_log_says(log, "2 ranks: gradients summed with NCCL", "srun");
    check_losses_of_one_process(run, "srun -n 2 without MPI, NCCL id file");
}

// Rank 1 alone with an earlier job's id file: a clear error naming the file, after the timeout.
static void test_earlier_jobs_id_file_is_refused(void) {
    char log[128], id_file[128];
    snprintf(log, sizeof log, "%s/stale.log", dir);
    snprintf(id_file, sizeof id_file, "%s/stale.nccl", dir);
    earlier_job_id_file(id_file, 8000);
    double start = now_s();
    int rc = sh(log, SRUN_ENV(8001) "SLURM_PROCID=1 SLURM_LOCALID=1 TIPCAP_EMU_DEVICES=2 TIPCAP_NCCL_TIMEOUT=2 "
                "timeout 60 bin/emu/tipcap-train " TRAIN_ARGS " --set run.dir=%s/stale --nccl-id-file %s",
                config, dir, id_file);
    double seconds = now_s() - start;
    CHECK(rc != 0 && rc != 124, "rank 1 with an earlier job's id file: exit status %d (want a clear error; 124: it "
          "hung) (see %s)", rc, log);
    char want[300];
    snprintf(want, sizeof want, "rank 1: no NCCL id of job 8001.0 in %s after 2 s: it holds job 8000.0's", id_file);
    check_log_says(log, want, "rank 1 with an earlier job's id file");
    CHECK(seconds < 30, "%.0f s to give up after a 2 s timeout", seconds);
}

// (c) the build without NCCL under mpirun -np 2: every rank sums through MPI.
static void test_mpirun_without_nccl(void) {
    if (!have_mpirun()) SKIP("mpirun not installed");
    char run[128], log[128];
    scratch(run, log, sizeof run, "nonccl");
    int rc = sh(log, "TIPCAP_EMU_DEVICES=2 " MPIRUN "-x TIPCAP_EMU_DEVICES bin/emu-nonccl/tipcap-train " TRAIN_ARGS
                     " --set run.dir=%s", config, run);
    REQUIRE(rc == 0, "mpirun -np 2 bin/emu-nonccl/tipcap-train failed (124: it hung) (see %s)", log);
    check_log_says(log, "built without NCCL: gradients are summed through host memory with MPI", "no NCCL");
    check_losses_of_one_process(run, "mpirun -np 2, built without NCCL");
}

// run.device=auto with a GPU on rank 0 and none on rank 1: all ranks stop, one message, quickly.
static void test_rank_without_gpu_stops_all(void) {
    if (!have_mpirun()) SKIP("mpirun not installed");
    char run[128], log[128];
    scratch(run, log, sizeof run, "nogpu");
    double start = now_s();
    int rc = sh(log, MPIRUN "sh -c 'if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then export TIPCAP_EMU_DEVICES=0; "
                "else export TIPCAP_EMU_DEVICES=2; fi; exec bin/emu/tipcap-train " TRAIN_ARGS
                " --set run.device=auto --set run.dir=%s'", config, run);
    double seconds = now_s() - start;
    CHECK(rc != 0 && rc != 124, "exit status %d (want a clear error; 124: it hung) (see %s)", rc, log);
    check_log_says(log, "run.device=auto: every rank must use the same backend, but rank 1 has no GPU", "no GPU");
    CHECK(error_lines(log) == 1, "%d error lines (want one message) in %s", error_lines(log), log);
    CHECK(seconds < 30, "%.0f s to stop", seconds);
}

// Two ranks on a node with one GPU: an error, not two ranks sharing it.
static void test_more_ranks_than_gpus(void) {
    if (!have_mpirun()) SKIP("mpirun not installed");
    char run[128], log[128];
    scratch(run, log, sizeof run, "toofew");
    int rc = sh(log, "TIPCAP_EMU_DEVICES=1 " MPIRUN "-x TIPCAP_EMU_DEVICES bin/emu/tipcap-train " TRAIN_ARGS
                     " --set run.dir=%s", config, run);
    CHECK(rc != 0 && rc != 124, "exit status %d (want a clear error; 124: it hung) (see %s)", rc, log);
    check_log_says(log, "rank 1: local rank 1, but its node has 1 GPU", "more ranks than GPUs");
    CHECK(error_lines(log) == 1, "%d error lines (want one message) in %s", error_lines(log), log);
}

// Each rank selects its GPU from the launcher's local rank before MPI_Init: the emulation reports a
// cudaSetDevice after MPI_Init (a CUDA-aware MPI would have opened a context on GPU 0 there).
static void test_device_selected_before_mpi_init(void) {
    if (!have_mpirun()) SKIP("mpirun not installed");
    char run[128], log[128];
    scratch(run, log, sizeof run, "device_first");
    int rc = sh(log, "TIPCAP_EMU_DEVICES=2 " MPIRUN "-x TIPCAP_EMU_DEVICES bin/emu/tipcap-train " TRAIN_ARGS
                     " --set train.steps=1 --set run.dir=%s", config, run);
    CHECK(rc == 0, "mpirun -np 2 failed (see %s)", log);
    check_log_says(log, "rank 1 of 2: GPU 1", "device selection");
    char* text = slurp(log);
    CHECK(!strstr(text, "after MPI_Init"), "a device was selected after MPI_Init:\n%s", text);
    free(text);
}

int main(void) {
    if (access("bin/emu/tipcap-train", X_OK) != 0 || access("bin/emu-nonccl/tipcap-train", X_OK) != 0) {
        printf("run from the repository root after make emu emu-nonccl\n0 passed, 1 failed, 0 skipped\n");
        return 1;
    }
    if (fixture_setup("dist")) {
        printf("FAIL setup: could not simulate the test data in %s\n0 passed, 1 failed, 0 skipped\n", dir);
        return 1;
    }
    RUN(test_one_process);
    RUN(test_mpirun_nccl);
    RUN(test_comm_init_times_out);
    RUN(test_srun_without_mpi);
    RUN(test_earlier_jobs_id_file_is_refused);
    RUN(test_mpirun_without_nccl);
    RUN(test_rank_without_gpu_stops_all);
    RUN(test_more_ranks_than_gpus);
    RUN(test_device_selected_before_mpi_init);
    int rc = test_summary();
    if (rc == 0) fixture_remove();
    return rc;
}
