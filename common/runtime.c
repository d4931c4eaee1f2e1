#include "common/runtime.h"

#include <stdlib.h>
#include <unistd.h>

void runtime_init(int argc, char** argv) {
    (void)argc;
    int changed = 0;
    if (!getenv("OMP_WAIT_POLICY")) changed = !setenv("OMP_WAIT_POLICY", "passive", 1);
    if (!getenv("OPENBLAS_THREAD_TIMEOUT")) changed |= !setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1);
    if (changed) execv("/proc/self/exe", argv);  // returns only on failure: then carry on as we are
}
