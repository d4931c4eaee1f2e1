// Process setup shared by the compute programs.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// OpenMP threads that wait at the end of a parallel region spin by default, and they compete for
// the cores with OpenBLAS's own threads (Debian's OpenBLAS is pthread-based): on a 2-core machine
// a training step took 2-4x longer than with passive waiting. libgomp reads OMP_WAIT_POLICY once,
// before main() runs, so when the user has not chosen a policy this sets it to passive and
// re-executes the program (the same pid, arguments and environment otherwise).
void runtime_init(int argc, char** argv);

#ifdef __cplusplus
}
#endif
