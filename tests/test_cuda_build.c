// The fat binaries of the CUDA library (build/libtipcap_cuda.a, kernels/*.cu through nvcc): every
// object with kernels carries PTX for its newest SASS target, so that a device newer than every
// SASS target (compute capability 10.x, 12.x for the default GPU_ARCH) JIT-compiles the PTX
// instead of failing every launch with cudaErrorNoKernelImageForDevice. Read with cuobjdump
// (scripts/install-deps.sh --python installs it where the toolkit lacks it); skipped only where
// the build has no nvcc.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"

#ifdef TIPCAP_HAVE_CUDA
enum { MAX_MEMBERS = 64 };
typedef struct {
    char name[128];
    int newest_sass;  // the highest sm_XX among its cubins, 0 if none
    int newest_ptx;   // the highest architecture among its PTX files, 0 if none
} Member;

// Reads `cuobjdump --list-elf` or `--list-ptx` of the library: lines "member LIB:NAME.o:" followed
// by "ELF file 1: NAME.sm_80.cubin" or "PTX file 1: NAME.sm_90.ptx" (cuobjdump names PTX sm_XX too).
static int read_listing(const char* option, Member* members, int* n_members, int ptx) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s '%s' 2>&1", TIPCAP_CUOBJDUMP, option, TIPCAP_CUDA_LIB);
    FILE* p = popen(cmd, "r");
    if (!p) return -1;
    char line[512];
    Member* current = NULL;
    while (fgets(line, sizeof line, p)) {
        const char* sm;
        if (!strncmp(line, "member ", 7)) {
            const char* colon = strrchr(line, ':');  // "member LIB:NAME.o:\n": the name sits between the last two colons
            const char* start = colon;
            while (start > line && start[-1] != ':') start--;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(colon - start), start);
            current = NULL;
            for (int i = 0; i < *n_members; i++)
                if (!strcmp(members[i].name, name)) current = &members[i];
            if (!current && *n_members < MAX_MEMBERS) {
                current = &members[(*n_members)++];
                memset(current, 0, sizeof *current);
                snprintf(current->name, sizeof current->name, "%s", name);
            }
        } else if (current && (sm = strstr(line, ".sm_")) && (strstr(line, "ELF file") || strstr(line, "PTX file"))) {
            int arch = atoi(sm + 4);
            int* newest = ptx ? &current->newest_ptx : &current->newest_sass;
            if (arch > *newest) *newest = arch;
        }
    }
    return pclose(p);
}
#endif

static void test_ptx_for_the_newest_target(void) {
#ifndef TIPCAP_HAVE_CUDA
    SKIP("this build has no nvcc");
#else
    REQUIRE(TIPCAP_CUOBJDUMP[0], "nvcc is here but cuobjdump is not: scripts/install-deps.sh --python installs it "
                                 "(PyPI nvidia-cuda-cuobjdump)");
    Member members[MAX_MEMBERS];
    int n = 0;
    REQUIRE(read_listing("--list-elf", members, &n, 0) == 0, "%s --list-elf %s failed", TIPCAP_CUOBJDUMP, TIPCAP_CUDA_LIB);
    REQUIRE(read_listing("--list-ptx", members, &n, 1) == 0, "%s --list-ptx %s failed", TIPCAP_CUOBJDUMP, TIPCAP_CUDA_LIB);
    int with_kernels = 0;
    for (int i = 0; i < n; i++) {
        if (!members[i].newest_sass) continue;
        with_kernels++;
        CHECK(members[i].newest_ptx == members[i].newest_sass,
              "%s: SASS up to sm_%d, newest PTX compute_%d (0: none): devices newer than every SASS target "
              "cannot run its kernels", members[i].name, members[i].newest_sass, members[i].newest_ptx);
    }
    CHECK(with_kernels >= 10, "only %d objects of %s hold SASS", with_kernels, TIPCAP_CUDA_LIB);
#endif
}

int main(void) {
    RUN(test_ptx_for_the_newest_target);
    return test_summary();
}
