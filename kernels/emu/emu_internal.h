// Shared by the emulation's runtime sources (emu_runtime.cpp, emu_exec.cpp, emu_cublas.cpp).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/emu/cuda_emu.h"

// Prints "error: CUDA emulation: <message>" to stderr and exits with status 1 (without running
// exit handlers: it may be called on a worker thread while the launching thread waits).
[[noreturn]] __attribute__((format(printf, 1, 2))) void emu_fatal(const char* fmt, ...);

// Records `err` as the calling host thread's last error (cudaGetLastError) and returns it.
cudaError_t emu_set_error(cudaError_t err);

// A fault while a kernel runs (__trap) is asynchronous and sticky, as on a GPU: the launch itself
// succeeds, the first synchronising call after it (cudaDeviceSynchronize, cudaStreamSynchronize,
// cudaEventSynchronize, cudaMemcpy, cudaMemset) returns the error, and from then on every
// one of those calls, each launch and cudaGetLastError return it too. Launches after the fault do
// not run. `what` (kernel, block, thread, site) is printed when the fault happens.
void emu_set_execution_error(cudaError_t err, const char* what);
// cudaSuccess, or the execution error once a synchronising call has reported it (recorded as the
// last error); emu_sync_point() is such a call.
cudaError_t emu_sticky_error(void);
cudaError_t emu_sync_point(void);
// Whether a launch must not run: an execution error has happened, reported or not.
bool emu_context_failed(void);

// Fills with the poison that marks memory nobody has written: the 16-bit pattern 0x7FFF at even
// addresses, a NaN as bf16, float and double, and a huge value as a 32-bit integer.
void emu_fill_poison(void* ptr, size_t bytes);

// Red zones: `bytes` bytes around device allocations and dynamic shared memory hold a pattern that
// depends on each byte's address, so that data copied from another red zone still differs.
void emu_fill_red_zone(void* ptr, size_t bytes);
// Offset of the first byte that differs from the red-zone pattern, or -1.
long emu_find_red_zone_damage(const void* ptr, size_t bytes, long* last_damaged);
// Checks the red zones of every device allocation; on damage reports `culprit` (a kernel or library
// call) and exits. Called after every launch and library call, and before: copies are checked
// against their allocations, so damage found before a call was done by host code writing through
// a device pointer (which only works under the emulation).
void emu_check_red_zones(const char* culprit);
void emu_check_red_zones_before(const char* call);

// The device allocation that holds [ptr, ptr + bytes): returns 1 if it does, 0 if ptr is not device
// memory at all, -1 if ptr is device memory but the range runs outside its allocation (then
// *alloc_bytes and *offset describe the allocation and where ptr lies in it).
int emu_device_range(const void* ptr, size_t bytes, size_t* alloc_bytes, size_t* offset);
// Exits with a message naming `what` (e.g. "cublasSgemm: A") unless [ptr, ptr + bytes) is device memory.
void emu_require_device_range(const void* ptr, size_t bytes, const char* what);
