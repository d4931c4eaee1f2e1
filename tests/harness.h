// Test harness: one small program per area, each case a function run with RUN(case).
//   CHECK(cond, fmt, ...)   records a failure of the current case and carries on
//   REQUIRE(cond, fmt, ...) records a failure and leaves the case
//   SKIP(fmt, ...)          leaves the case as skipped (a missing oracle, a build without an option)
//   NEED_GPU(have)          leaves the case unless `have` (a CUDA backend or device was found):
//                           see th_no_gpu for when that is a skip and when a failure
// main() ends with `return test_summary();`, which prints "N passed, N failed, N skipped" and
// returns non-zero on any failure. tests/run.sh runs every program and adds the counts up.
#pragma once
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int th_passed, th_failed, th_skipped;
static int th_case_failed, th_case_skipped;
static const char* th_case_name;

__attribute__((format(printf, 3, 4), unused))
static void th_fail(const char* file, int line, const char* fmt, ...) {
    if (!th_case_failed) printf("FAIL %s\n", th_case_name);
    th_case_failed = 1;
    printf("  %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

#define CHECK(cond, ...) do { if (!(cond)) th_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define REQUIRE(cond, ...) do { if (!(cond)) { th_fail(__FILE__, __LINE__, __VA_ARGS__); return; } } while (0)
#define SKIP(...) do { th_case_skipped = 1; printf("SKIP %s: ", th_case_name); printf(__VA_ARGS__); printf("\n"); return; } while (0)

// An environment flag: set, not empty and not "0".
__attribute__((unused))
static int th_env_flag(const char* name) {
    const char* v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

// A case that needs the CUDA backend (or a device) and has none. Under the CUDA emulation
// (make test) that is a failure: the emulated backend is always there. Against real CUDA (built
// with TIPCAP_TEST_GPU, make test-gpu) it is a skip, or a failure when TIPCAP_REQUIRE_GPU=1, so
// that a run meant for a GPU cannot pass by skipping its GPU cases.
__attribute__((unused))
static void th_no_gpu(const char* file, int line) {
#ifdef TIPCAP_TEST_GPU
    if (!th_env_flag("TIPCAP_REQUIRE_GPU")) {
        th_case_skipped = 1;
        printf("SKIP %s: no CUDA GPU (with TIPCAP_REQUIRE_GPU=1 this is a failure)\n", th_case_name);
        return;
    }
    th_fail(file, line, "no CUDA GPU, and TIPCAP_REQUIRE_GPU=1 requires one");
#else
    th_fail(file, line, "the emulated CUDA backend could not be created");
#endif
}
#define NEED_GPU(have) do { if (!(have)) { th_no_gpu(__FILE__, __LINE__); return; } } while (0)

// TIPCAP_TEST_SMALL=1 (compute-sanitizer runs, scripts/gpu-session.sh): the GPU tests leave out
// every shape with a buffer of more than TEST_SMALL_ELEMS elements. test_leaves_out(elems, what)
// says whether to leave this one out, and names it when it does.
#define TEST_SMALL_ELEMS ((size_t)1 << 17)
__attribute__((unused, format(printf, 2, 3)))
static int test_leaves_out(size_t elems, const char* fmt, ...) {
    if (elems <= TEST_SMALL_ELEMS || !th_env_flag("TIPCAP_TEST_SMALL")) return 0;
    printf("  TIPCAP_TEST_SMALL=1: left out ");
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" (%zu elements > %zu)\n", elems, TEST_SMALL_ELEMS);
    return 1;
}

#define RUN(fn) th_run(#fn, fn)
__attribute__((unused))
static void th_run(const char* name, void (*fn)(void)) {
    th_case_name = name;
    th_case_failed = th_case_skipped = 0;
    fn();
    if (th_case_failed) th_failed++;
    else if (th_case_skipped) th_skipped++;
    else {
        th_passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

__attribute__((unused))
static int test_summary(void) {
    printf("%d passed, %d failed, %d skipped\n", th_passed, th_failed, th_skipped);
    return th_failed ? 1 : 0;
}

// Seed for random inputs: TIPCAP_TEST_SEED if set, otherwise fresh every run; always printed
// so that a failure can be replayed.
__attribute__((unused))
static uint64_t test_seed(void) {
    static uint64_t seed;
    static int done;
    if (!done) {
        const char* s = getenv("TIPCAP_TEST_SEED");
        if (s) seed = strtoull(s, NULL, 10);
        else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid();
            seed %= 1000000007ull;
        }
        printf("seed %llu (TIPCAP_TEST_SEED=%llu to replay)\n", (unsigned long long)seed, (unsigned long long)seed);
        done = 1;
    }
    return seed;
}

// Runs fn in a child process and captures what it writes to stderr (up to cap bytes).
// Returns the child's exit status (or 128 + signal). For testing code that exits on error.
__attribute__((unused))
static int run_captured(void (*fn)(void* arg), void* arg, char* err_out, size_t cap) {
    int pipefd[2];
    if (pipe(pipefd) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 2);
        fn(arg);
        fflush(stderr);
        _exit(0);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t got;
    char sink[256];
    while ((got = read(pipefd[0], len + 1 < cap ? err_out + len : sink,
                       len + 1 < cap ? cap - 1 - len : sizeof sink)) > 0)
        if (len + 1 < cap) len += (size_t)got;
    close(pipefd[0]);
    if (cap) err_out[len] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

// The CUDA emulator (kernels/emu) reads its shuffle mode from TIPCAP_EMU_SHUFFLE when the program
// starts. A test program re-runs itself as a child with shuffle mode on and the same seed, with
// the argument SHUFFLED_CHILD_FLAG (its main() then runs the CUDA cases); returns 1 when the child
// passed, and leaves its output in log.
#define SHUFFLED_CHILD_FLAG "--shuffled-child"
__attribute__((unused))
static int rerun_shuffled(char* log, size_t cap) {
    char seed[32], shuffle[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)test_seed());
    snprintf(shuffle, sizeof shuffle, "%llu", (unsigned long long)test_seed() + 1);  // 0 would turn it off
    int pipefd[2];
    if (pipe(pipefd) != 0) return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(pipefd[0]);
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        setenv("TIPCAP_TEST_SEED", seed, 1);
        setenv("TIPCAP_EMU_SHUFFLE", shuffle, 1);
        execl("/proc/self/exe", "shuffled-child", SHUFFLED_CHILD_FLAG, (char*)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = snprintf(log, cap, "TIPCAP_EMU_SHUFFLE=%s TIPCAP_TEST_SEED=%s %s:\n", shuffle, seed, SHUFFLED_CHILD_FLAG);
    ssize_t got;
    char sink[4096];
    while ((got = read(pipefd[0], len + 1 < cap ? log + len : sink, len + 1 < cap ? cap - 1 - len : sizeof sink)) > 0)
        if (len + 1 < cap) len += (size_t)got;
    close(pipefd[0]);
    log[len < cap ? len : cap - 1] = '\0';
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 && strstr(log, " passed, 0 failed") != NULL;
}

// Relative error ||a - b|| / ||b|| over n floats; infinite if either holds a NaN or Inf, so
// that an unwritten (poisoned) output can never pass a bound.
__attribute__((unused))
static double rel_err(const float* a, const float* b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i])) return INFINITY;
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1.0);
}
