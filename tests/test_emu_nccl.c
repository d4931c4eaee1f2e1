// Tests of the emulated devices and the emulated NCCL (kernels/emu/emu_nccl.cpp), with one forked
// process per rank: TIPCAP_EMU_DEVICES and cudaSetDevice/GetDevice as CUDA defines them; all-reduce
// of every type and operation in rank order (every rank gets the same bits), over several chunks of
// the staging area; broadcast; mismatched collectives reported by both ranks with both calls; a
// peer missing at init (blocking and not, or dead) or at a collective (left, exited, late) becomes an error
// after the timeout instead of a hang; two ranks on one device; one rank taken twice; bad arguments.
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/check.h"
#include "tests/emu_nccl_ranks.h"
#include "tests/harness.h"

enum { kInt8 = 0, kUint8 = 1, kInt32 = 2, kUint32 = 3, kInt64 = 4, kUint64 = 5, kFloat = 7, kDouble = 8, kBfloat16 = 9 };
enum { kSum = 0, kProd = 1, kMax = 2, kMin = 3, kAvg = 4 };
enum { kInvalidArgument = 4, kInvalidUsage = 5, kRemoteError = 6, kInProgress = 7 };
enum { kCudaErrorNoDevice = 100, kCudaErrorInvalidDevice = 101 };
#define MAX_RANKS 4

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// ---------------------------------------------------------------- one process per rank
typedef struct {
    int status;  // exit status, 128 + signal if killed
    char* err;   // what the rank wrote to stderr
} RankOutcome;

typedef int (*RankBody)(int rank, void* arg);

// Runs body(rank, arg) for every rank in its own process (its exit status is what body returns),
// reaping each as it ends (a peer checks whether a process has exited, and a zombie has not);
// returns the seconds until the last one ended.
static double run_ranks(int nranks, RankBody body, void* arg, RankOutcome* out) {
    char paths[MAX_RANKS][64];
    pid_t pids[MAX_RANKS];
    double start = now_s();
    fflush(stdout);
    fflush(stderr);
    for (int r = 0; r < nranks; r++) {
        snprintf(paths[r], sizeof paths[r], "/tmp/tipcap_emu_nccl_XXXXXX");
        int fd = mkstemp(paths[r]);
        if (fd < 0) FATAL("mkstemp: %s", strerror(errno));
        pids[r] = fork();
        if (pids[r] == 0) {
            dup2(fd, 2);
            int rc = body(r, arg);
            fflush(stderr);
            _exit(rc);
        }
        close(fd);
    }
    for (int left = nranks; left > 0; left--) {
        int status;
        pid_t pid = wait(&status);
        for (int r = 0; r < nranks; r++)
            if (pids[r] == pid) out[r].status = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    }
    double seconds = now_s() - start;
    for (int r = 0; r < nranks; r++) {
        out[r].err = readFileCheck(paths[r], NULL);
        unlink(paths[r]);
    }
    return seconds;
}

static void free_outcomes(RankOutcome* out, int n) {
    for (int r = 0; r < n; r++) free(out[r].err);
}

// ---------------------------------------------------------------- element values
static uint64_t mix(uint64_t z) {  // splitmix64
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float bf16_round(float f) {  // to nearest even, as __float2bfloat16 (finite values)
    uint32_t u;
    memcpy(&u, &f, 4);
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static double round_to(int type, double v) {
    if (type == kFloat) return (float)v;
    if (type == kBfloat16) return bf16_round((float)v);
    if (type == kUint8) return (double)(uint8_t)(int64_t)v;
    return v;
}

static size_t type_bytes(int type) {
    return type == kUint8 || type == kInt8 ? 1 : type == kBfloat16 ? 2 : type == kInt32 || type == kFloat ? 4 : 8;
}

// Rank r's element i: magnitudes over 2^48 for the floating types, so that the order in which the
// ranks are combined shows in the bits.
static double input_value(int type, int rank, size_t i) {
    uint64_t h = mix(i * MAX_RANKS + (uint64_t)rank);
    double centred = (double)((int64_t)(h % 2001) - 1000);
    if (type == kUint8) return (double)(1 + h % 3);
    if (type == kInt32) return centred;
    if (type == kInt64) return centred * 1e9;
    return round_to(type, ldexp(centred, (int)((h >> 20) % 48) - 24));
}

static void store(int type, void* buf, size_t i, double v) {
    switch (type) {
        case kUint8: ((uint8_t*)buf)[i] = (uint8_t)v; break;
        case kInt32: ((int32_t*)buf)[i] = (int32_t)v; break;
        case kInt64: ((int64_t*)buf)[i] = (int64_t)v; break;
        case kFloat: ((float*)buf)[i] = (float)v; break;
        case kDouble: ((double*)buf)[i] = v; break;
        case kBfloat16: {
            float f = (float)v;
            uint32_t u;
            memcpy(&u, &f, 4);
            ((uint16_t*)buf)[i] = (uint16_t)(u >> 16);
            break;
        }
    }
}

static void* inputs_of(int type, int rank, size_t count) {
    void* buf = mallocCheck(count * type_bytes(type));
    for (size_t i = 0; i < count; i++) store(type, buf, i, input_value(type, rank, i));
    return buf;
}

static double combine(int op, double a, double x) {
    return op == kProd ? a * x : op == kMax ? fmax(a, x) : op == kMin ? fmin(a, x) : a + x;
}

// The all-reduce of the ranks' inputs, combined in the order ranks[0], ranks[1], ... and rounded
// to the type after every step (the average: the sum over nranks).
static void* reduced(int type, int op, const int* order, int nranks, size_t count) {
    void* buf = mallocCheck(count * type_bytes(type));
    for (size_t i = 0; i < count; i++) {
        double acc = input_value(type, order[0], i);
        for (int k = 1; k < nranks; k++) acc = round_to(type, combine(op, acc, input_value(type, order[k], i)));
        if (op == kAvg) acc = round_to(type, acc / nranks);
        store(type, buf, i, acc);
    }
    return buf;
}

// Index of the first element that differs bit for bit, or -1.
static long first_difference(const void* a, const void* b, size_t count, size_t elem) {
    for (size_t i = 0; i < count; i++)
        if (memcmp((const char*)a + i * elem, (const char*)b + i * elem, elem)) return (long)i;
    return -1;
}

// ---------------------------------------------------------------- the devices
static int devices_body(int rank, void* arg) {
    const char* devices = arg;
    if (devices) setenv("TIPCAP_EMU_DEVICES", devices, 1);
    else unsetenv("TIPCAP_EMU_DEVICES");
    int count = -1, current = -1;
    int count_err = enr_device_count(&count);
    int set_last = enr_set_device(count > 0 ? count - 1 : 0);
    int set_past = enr_set_device(count > 0 ? count : 1);
    int get_err = enr_get_device(&current);
    fprintf(stderr, "%d %d %d %d %d %d\n", count_err, count, set_last, set_past, get_err, current);
    return 0;
}

static void expect_devices(const char* setting, int count_err, int count, int set_last, int set_past, int get_err,
                           int current) {
    RankOutcome out[1];
    run_ranks(1, devices_body, (void*)setting, out);
    int got[6] = {-1, -1, -1, -1, -1, -1};
    sscanf(out[0].err, "%d %d %d %d %d %d", &got[0], &got[1], &got[2], &got[3], &got[4], &got[5]);
    int want[6] = {count_err, count, set_last, set_past, get_err, current};
    const char* what[6] = {"cudaGetDeviceCount's error", "the count", "cudaSetDevice(last)",
                           "cudaSetDevice(past the last)", "cudaGetDevice's error", "the current device"};
    for (int i = 0; i < 6; i++)
        CHECK(got[i] == want[i], "TIPCAP_EMU_DEVICES=%s: %s is %d, want %d", setting ? setting : "(unset)", what[i],
              got[i], want[i]);
    free_outcomes(out, 1);
}

static void test_device_count(void) {
    expect_devices(NULL, 0, 1, 0, kCudaErrorInvalidDevice, 0, 0);
    expect_devices("3", 0, 3, 0, kCudaErrorInvalidDevice, 0, 2);
    expect_devices("0", kCudaErrorNoDevice, 0, kCudaErrorNoDevice, kCudaErrorNoDevice, kCudaErrorNoDevice, -1);
    RankOutcome out[1];
    run_ranks(1, devices_body, "two", out);
    CHECK(out[0].status == 1 && strstr(out[0].err, "TIPCAP_EMU_DEVICES=two: give a device count"),
          "TIPCAP_EMU_DEVICES=two: status %d, stderr:\n%s", out[0].status, out[0].err);
    free_outcomes(out, 1);
}

// ---------------------------------------------------------------- collectives
typedef struct {
    unsigned char id[128];
    int nranks;
    const char* devices;  // TIPCAP_EMU_DEVICES
    const char* timeout;  // TIPCAP_EMU_NCCL_TIMEOUT
} CommSetup;

// The environment, device `rank` and a blocking ncclCommInitRank; returns its result.
static int join(int rank, const CommSetup* s) {
    setenv("TIPCAP_EMU_DEVICES", s->devices, 1);
    setenv("TIPCAP_EMU_NCCL_TIMEOUT", s->timeout, 1);
    if (enr_set_device(rank % atoi(s->devices))) return 100;
    return enr_init(s->id, s->nranks, rank, 1, 0, NULL);
}

static CommSetup comm_setup(int nranks, const char* devices, const char* timeout) {
    CommSetup s = {.nranks = nranks, .devices = devices, .timeout = timeout};
    enr_unique_id(s.id);
    return s;
}

typedef struct {
    int type, op, in_place;
    size_t count;
} ReduceCase;
static const ReduceCase kReduceCases[] = {
    {kFloat, kSum, 1, 1300000},  // several chunks of the 4 MiB staging area, in place
    {kDouble, kMax, 0, 1000}, {kInt32, kSum, 0, 1000}, {kInt64, kMin, 0, 1000},
    {kUint8, kProd, 0, 1000}, {kBfloat16, kSum, 0, 1000}, {kFloat, kAvg, 0, 1000},
};
static const int kRankOrder[3] = {0, 1, 2};

static int all_reduce_body(int rank, void* arg) {
    const CommSetup* s = arg;
    int r = join(rank, s);
    if (r) return r;
    int failures = 0;
    for (size_t c = 0; c < sizeof kReduceCases / sizeof kReduceCases[0]; c++) {
        const ReduceCase* rc = &kReduceCases[c];
        void* in = inputs_of(rc->type, rank, rc->count);
        void* out = mallocCheck(rc->count * type_bytes(rc->type));
        if ((r = enr_all_reduce(in, out, rc->count, rc->type, rc->op, rc->in_place))) return r;
        void* want = reduced(rc->type, rc->op, kRankOrder, s->nranks, rc->count);
        long at = first_difference(out, want, rc->count, type_bytes(rc->type));
        if (at >= 0 && ++failures)
            fprintf(stderr, "rank %d: case %zu (type %d, op %d): element %ld differs from the rank-order result\n", rank,
                    c, rc->type, rc->op, at);
        free(in);
        free(out);
        free(want);
    }
    return failures ? 200 : enr_destroy();
}

static void test_all_reduce_in_rank_order(void) {
    // the inputs tell the orders apart: summed the other way round, the floats differ
    const int reverse[3] = {2, 1, 0};
    size_t n = kReduceCases[0].count;
    void* forward_sum = reduced(kFloat, kSum, kRankOrder, 3, n);
    void* backward_sum = reduced(kFloat, kSum, reverse, 3, n);
    long differs = first_difference(forward_sum, backward_sum, n, 4);
    free(forward_sum);
    free(backward_sum);
    REQUIRE(differs >= 0, "the test's inputs sum to the same floats in either order: it could not see the order");

    CommSetup s = comm_setup(3, "3", "60");
    RankOutcome out[3];
    run_ranks(3, all_reduce_body, &s, out);
    for (int r = 0; r < 3; r++) CHECK(out[r].status == 0, "rank %d: status %d:\n%s", r, out[r].status, out[r].err);
    free_outcomes(out, 3);
}

typedef struct {
    int type, root, in_place;
    size_t count;
} BroadcastCase;
static const BroadcastCase kBroadcastCases[] = {{kFloat, 1, 0, 1300000}, {kInt32, 2, 1, 1000}, {kDouble, 0, 0, 0}};

static int broadcast_body(int rank, void* arg) {
    const CommSetup* s = arg;
    int r = join(rank, s);
    if (r) return r;
    int failures = 0;
    for (size_t c = 0; c < sizeof kBroadcastCases / sizeof kBroadcastCases[0]; c++) {
        const BroadcastCase* bc = &kBroadcastCases[c];
        size_t bytes = bc->count * type_bytes(bc->type);
        void* in = inputs_of(bc->type, rank, bc->count);
        void* out = mallocCheck(bytes + 1);
        if ((r = enr_broadcast(in, out, bc->count, bc->type, bc->root, bc->in_place))) return r;
        void* want = inputs_of(bc->type, bc->root, bc->count);
        long at = first_difference(out, want, bc->count, type_bytes(bc->type));
        if (at >= 0 && ++failures)
            fprintf(stderr, "rank %d: broadcast from %d: element %ld is not the root's\n", rank, bc->root, at);
        free(in);
        free(out);
        free(want);
    }
    return failures ? 200 : enr_destroy();
}

static void test_broadcast(void) {
    CommSetup s = comm_setup(3, "3", "60");
    RankOutcome out[3];
    run_ranks(3, broadcast_body, &s, out);
    for (int r = 0; r < 3; r++) CHECK(out[r].status == 0, "rank %d: status %d:\n%s", r, out[r].status, out[r].err);
    free_outcomes(out, 3);
}

// ---------------------------------------------------------------- mismatched collectives
typedef struct {
    int broadcast;    // 0: ncclAllReduce
    int type, op_or_root;
    size_t count;
} Call;
typedef struct {
    const char* name;
    Call calls[2][2];  // per rank, up to two calls (count 0 ends the list)
    const char* described[2];  // how the emulation names each rank's call where they differ
} MismatchCase;
static const MismatchCase kMismatches[] = {
    {"kind", {{{0, kFloat, kSum, 100}}, {{1, kFloat, 0, 100}}},
     {"ncclAllReduce(count 100, ncclFloat32, ncclSum)", "ncclBroadcast(count 100, ncclFloat32, root 0)"}},
    {"count", {{{0, kFloat, kSum, 100}}, {{0, kFloat, kSum, 101}}},
     {"ncclAllReduce(count 100, ncclFloat32, ncclSum)", "ncclAllReduce(count 101, ncclFloat32, ncclSum)"}},
    {"type", {{{0, kFloat, kSum, 100}}, {{0, kDouble, kSum, 100}}},
     {"ncclAllReduce(count 100, ncclFloat32, ncclSum)", "ncclAllReduce(count 100, ncclFloat64, ncclSum)"}},
    {"operation", {{{0, kFloat, kSum, 100}}, {{0, kFloat, kMax, 100}}},
     {"ncclAllReduce(count 100, ncclFloat32, ncclSum)", "ncclAllReduce(count 100, ncclFloat32, ncclMax)"}},
    {"root", {{{1, kFloat, 0, 100}}, {{1, kFloat, 1, 100}}},
     {"ncclBroadcast(count 100, ncclFloat32, root 0)", "ncclBroadcast(count 100, ncclFloat32, root 1)"}},
    {"a call skipped by rank 1", {{{0, kFloat, kSum, 50}, {0, kFloat, kSum, 100}}, {{0, kFloat, kSum, 100}}},
     {"ncclAllReduce(count 50, ncclFloat32, ncclSum)", "ncclAllReduce(count 100, ncclFloat32, ncclSum)"}},
};

typedef struct {
    CommSetup setup;
    const MismatchCase* mismatch;
} MismatchRun;

static int mismatch_body(int rank, void* arg) {
    const MismatchRun* m = arg;
    int r = join(rank, &m->setup);
    if (r) return r;
    for (int c = 0; c < 2 && m->mismatch->calls[rank][c].count; c++) {
        const Call* call = &m->mismatch->calls[rank][c];
        void* buf = calloc(call->count, type_bytes(call->type));
        r = call->broadcast ? enr_broadcast(buf, buf, call->count, call->type, call->op_or_root, 1)
                            : enr_all_reduce(buf, buf, call->count, call->type, call->op_or_root, 1);
        free(buf);
        if (r) return r;
    }
    return 0;
}

static void test_mismatched_collectives(void) {
    for (size_t i = 0; i < sizeof kMismatches / sizeof kMismatches[0]; i++) {
        const MismatchCase* mc = &kMismatches[i];
        MismatchRun m = {comm_setup(2, "2", "20"), mc};
        RankOutcome out[2];
        double seconds = run_ranks(2, mismatch_body, &m, out);
        for (int r = 0; r < 2; r++) {
            char want[400];
            snprintf(want, sizeof want, "rank %d: mismatched collectives at call #1: rank %d calls %s, rank %d calls %s",
                     r, r, mc->described[r], 1 - r, mc->described[1 - r]);
            CHECK(out[r].status == kInvalidUsage && strstr(out[r].err, want),
                  "%s: rank %d: status %d (want ncclInvalidUsage), stderr does not say \"%s\":\n%s", mc->name, r,
                  out[r].status, want, out[r].err);
        }
        CHECK(seconds < 10, "%s: %.1f s to report the mismatch", mc->name, seconds);
        free_outcomes(out, 2);
    }
}

// ---------------------------------------------------------------- peers that do not come
// Whether the shared memory of the communicator of `id` is still there.
static int segment_exists(const unsigned char id[128]) {
    char path[80] = "/dev/shm/tipcap-emu-nccl-";
    for (int i = 16; i < 32; i++) snprintf(path + strlen(path), sizeof path - strlen(path), "%02x", id[i]);
    return access(path, F_OK) == 0;
}

static int alone_at_init_body(int rank, void* arg) {
    const CommSetup* s = arg;
    int blocking = rank == 0;  // process 0 blocks, process 1 does not (both are rank 0 of their own id)
    setenv("TIPCAP_EMU_NCCL_TIMEOUT", s->timeout, 1);
    int state = -1;
    int r = enr_init(s[rank].id, 2, 0, blocking, 0.3, &state);
    if (!blocking) fprintf(stderr, "state %d\n", state);
    int abort_r = enr_abort();
    if (segment_exists(s[rank].id)) fprintf(stderr, "the shared memory is still there after ncclCommAbort\n");
    return r ? r : abort_r;
}

static void test_peer_missing_at_init(void) {
    CommSetup s[2] = {comm_setup(2, "2", "1"), comm_setup(2, "2", "1")};
    RankOutcome out[2];
    double seconds = run_ranks(2, alone_at_init_body, s, out);
    CHECK(out[0].status == kRemoteError &&
              strstr(out[0].err, "rank 0: ncclCommInitRank: rank(s) 1 of 2 did not arrive within 1 s (TIPCAP_EMU_NCCL_TIMEOUT)"),
          "blocking init alone: status %d (want ncclRemoteError), stderr:\n%s", out[0].status, out[0].err);
    CHECK(out[1].status == 0 && strstr(out[1].err, "state 7\n"),
          "non-blocking init alone: status %d, ncclCommGetAsyncError should stay ncclInProgress; stderr:\n%s",
          out[1].status, out[1].err);
    for (int r = 0; r < 2; r++)
        CHECK(!strstr(out[r].err, "still there"), "process %d: %s", r, out[r].err);
    CHECK(seconds >= 1 && seconds < 6, "%.1f s for a 1 s timeout", seconds);
    free_outcomes(out, 2);
}

static int exits_during_init_body(int rank, void* arg) {
    const CommSetup* s = arg;
    setenv("TIPCAP_EMU_NCCL_TIMEOUT", s->timeout, 1);
    int state;
    if (rank == 0) _exit(enr_init(s->id, 2, 0, 0, 0, &state));  // joins, then dies without leaving
    usleep(300000);
    int r = enr_init(s->id, 2, 1, 1, 0, NULL);
    enr_abort();
    return r;
}

static void test_peer_exited_during_init(void) {
    CommSetup s = comm_setup(2, "2", "20");
    RankOutcome out[2];
    double seconds = run_ranks(2, exits_during_init_body, &s, out);
    CHECK(out[1].status == kRemoteError && strstr(out[1].err, "rank 1: ncclCommInitRank: rank 0 (process "),
          "rank 1: status %d (want ncclRemoteError: rank 0 has exited), stderr:\n%s", out[1].status, out[1].err);
    CHECK(seconds < 10, "%.1f s to see that rank 0 has exited", seconds);
    CHECK(!segment_exists(s.id), "the shared memory is still there after ncclCommAbort");
    free_outcomes(out, 2);
}

typedef struct {
    CommSetup setup;
    int how;  // what rank 1 does instead of the collective: 0 ncclCommDestroy, 1 exit, 2 nothing for 4 s
} AbsentRun;

static int absent_peer_body(int rank, void* arg) {
    const AbsentRun* a = arg;
    int r = join(rank, &a->setup);
    if (r) return r;
    if (rank == 1) {
        if (a->how == 0) return enr_destroy();
        if (a->how == 1) _exit(0);
        sleep(4);
        return enr_abort();
    }
    float buf[10] = {0};
    return enr_all_reduce(buf, buf, 10, kFloat, kSum, 1);
}

static void test_peer_missing_at_collective(void) {
    const char* says[3] = {"rank 0: ncclAllReduce (call #1): rank 1 has left the communicator",
                           "rank 0: ncclAllReduce (call #1): rank 1 (process ",
                           "rank 0: ncclAllReduce (call #1): rank(s) 1 of 2 did not arrive within 1 s"};
    for (int how = 0; how < 3; how++) {
        AbsentRun a = {comm_setup(2, "2", "1"), how};
        RankOutcome out[2];
        run_ranks(2, absent_peer_body, &a, out);
        CHECK(out[0].status == kRemoteError && strstr(out[0].err, says[how]),
              "rank 1 %s: rank 0's status %d (want ncclRemoteError), stderr does not say \"%s\":\n%s",
              how == 0 ? "destroys its communicator" : how == 1 ? "exits" : "stalls", out[0].status, says[how],
              out[0].err);
        free_outcomes(out, 2);
    }
}

// ---------------------------------------------------------------- what NCCL refuses
static int join_body(int rank, void* arg) { return join(rank, arg); }

static void test_two_ranks_on_one_device(void) {
    CommSetup s = comm_setup(2, "1", "20");
    RankOutcome out[2];
    run_ranks(2, join_body, &s, out);
    for (int r = 0; r < 2; r++)
        CHECK(out[r].status == kInvalidUsage &&
                  strstr(out[r].err, "Duplicate GPU detected: rank 0 and rank 1 both on CUDA device 0"),
              "rank %d: status %d (want ncclInvalidUsage), stderr:\n%s", r, out[r].status, out[r].err);
    free_outcomes(out, 2);
}

static int same_rank_body(int process, void* arg) {
    const CommSetup* s = arg;
    setenv("TIPCAP_EMU_NCCL_TIMEOUT", s->timeout, 1);
    if (process == 1) usleep(200000);  // the second to arrive
    int r = enr_init(s->id, 2, 0, 1, 0, NULL);
    if (process == 0) enr_abort();
    return r;
}

static void test_one_rank_taken_twice(void) {
    CommSetup s = comm_setup(2, "1", "1");
    RankOutcome out[2];
    run_ranks(2, same_rank_body, &s, out);
    CHECK(out[1].status == kInvalidUsage && strstr(out[1].err, "has joined as rank 0 already: two processes were given the same rank"),
          "the second rank 0: status %d (want ncclInvalidUsage), stderr:\n%s", out[1].status, out[1].err);
    CHECK(out[0].status == kRemoteError, "the first rank 0: status %d (want ncclRemoteError: rank 1 never came):\n%s",
          out[0].status, out[0].err);
    free_outcomes(out, 2);
}

static int bad_arguments_body(int rank, void* arg) {
    const CommSetup* s = arg;
    setenv("TIPCAP_EMU_NCCL_TIMEOUT", s->timeout, 1);
    unsigned char zeros[128] = {0};
    int results[3];
    results[0] = enr_init(zeros, 1, 0, 1, 0, NULL);
    results[1] = enr_init_uninitialised_config(s->id, 1, 0);
    if (enr_init(s->id, 1, 0, 1, 0, NULL)) return 100;
    float host[10] = {0};
    results[2] = enr_all_reduce_from_host(host, 10);
    fprintf(stderr, "results %d %d %d\n", results[0], results[1], results[2]);
    return enr_destroy();
}

static void test_bad_arguments(void) {
    CommSetup s = comm_setup(1, "1", "20");
    RankOutcome out[1];
    run_ranks(1, bad_arguments_body, &s, out);
    int got[3] = {-1, -1, -1};
    const char* at = strstr(out[0].err, "results ");
    if (at) sscanf(at, "results %d %d %d", &got[0], &got[1], &got[2]);
    CHECK(out[0].status == 0, "status %d:\n%s", out[0].status, out[0].err);
    const char* says[3] = {"the unique id was not made by ncclGetUniqueId",
                           "the config was not set up with NCCL_CONFIG_INITIALIZER",
                           "ncclAllReduce: sendbuff 0x"};
    for (int i = 0; i < 3; i++)
        CHECK(got[i] == kInvalidArgument && strstr(out[0].err, says[i]),
              "case %d: result %d (want ncclInvalidArgument), stderr does not say \"%s\":\n%s", i, got[i], says[i],
              out[0].err);
    CHECK(strstr(out[0].err, "is not 40 bytes of device memory") != NULL, "the host buffer's report:\n%s", out[0].err);
    free_outcomes(out, 1);
}

int main(void) {
    RUN(test_device_count);
    RUN(test_all_reduce_in_rank_order);
    RUN(test_broadcast);
    RUN(test_mismatched_collectives);
    RUN(test_peer_missing_at_init);
    RUN(test_peer_exited_during_init);
    RUN(test_peer_missing_at_collective);
    RUN(test_two_ranks_on_one_device);
    RUN(test_one_rank_taken_twice);
    RUN(test_bad_arguments);
    return test_summary();
}
