// Process setup shared by the compute programs.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

// OpenMP threads that wait at the end of a parallel region spin by default, and they compete for
// the cores with OpenBLAS's own threads (Debian's OpenBLAS is pthread-based): on a 2-core machine
// a training step took 2-4x longer than with passive waiting. OpenBLAS's idle threads likewise
// spin (sched_yield) for 2^28 cycles after each call before they sleep; OPENBLAS_THREAD_TIMEOUT=4
// (2^4 cycles) lets them sleep at once: training 25% and beam search 20-35% faster on the same
// machine (bench/RESULTS.md). Both libraries read their variable once, before main() runs, so when
// the user has not set them this sets the missing ones and re-executes the program (the same pid,
// arguments and environment otherwise).
void runtime_init(int argc, char** argv);

#ifdef __cplusplus
}
#endif
