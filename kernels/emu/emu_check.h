// Race, barrier and initialisation checks of the emulation (emu_check.cpp; kernels/emu/README.md,
// "Checks"). The kernels are compiled with -fsanitize=thread, so that every memory access of device
// code calls __tsan_read/__tsan_write; emu_check.cpp serves those calls itself (libtsan is not
// linked) and keeps a shadow entry per 2-byte granule of shared memory and of device allocations.
// The hooks below are called by the runtime (emu_exec.cpp, emu_runtime.cpp, emu_cublas.cpp).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/emu/cuda_emu.h"

// Whether the checks are on: TIPCAP_EMU_CHECKS=0 turns them off; emu_set_checks (cuda_emu.h) too.
bool emu_checks_on(void);
// For tests: turns the checks on or off for the launches that follow.
void emu_set_checks(int on);

// Device allocations: shadow created at cudaMalloc, dropped at cudaFree. `serial` names it in reports.
void emu_check_alloc(void* user, size_t bytes, uint64_t serial);
void emu_check_free(void* user);
// Host code or a library call wrote [ptr, ptr + bytes) (a copy, a memset, a cuBLAS output): it is
// initialised, and ordered before the next launch. Ranges outside device memory are ignored.
void emu_check_host_write(const void* ptr, size_t bytes);

// Called on the launching thread before the workers start a launch.
void emu_check_launch_begin(void);
// A worker thread: registers it with its static (TLS) and dynamic shared memory ranges.
void emu_check_worker_start(int worker, const void* static_shared, size_t static_bytes, const void* dynamic_shared,
                            size_t dynamic_bytes);
// Worker `worker` starts / ends a block of kernel `name` with `dynamic_bytes` of dynamic shared
// memory (`info`: the block, for reports).
void emu_check_block_begin(int worker, const char* name, const EmuBlockInfo* info, size_t dynamic_bytes);
void emu_check_block_end(void);
// A __syncthreads() released the block; a warp exchange completed among the lanes `group` of `warp`.
void emu_check_barrier(void);
void emu_check_exchange(int warp, unsigned group);
