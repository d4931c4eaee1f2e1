// The CUDA runtime API under the emulation: errors, the device description, device memory on the
// host heap between red zones, and streams and events (every call is synchronous).
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <set>
#include <string>

#include "kernels/emu/emu_check.h"
#include "kernels/emu/emu_internal.h"

// ---------------------------------------------------------------- errors
void emu_fatal(const char* fmt, ...) {
    static std::mutex fatal_lock;  // one report, even when several workers fail at once
    fatal_lock.lock();
    fflush(stdout);
    fprintf(stderr, "error: CUDA emulation: ");
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    _exit(1);
}

// The last error belongs to the host thread, as in CUDA.
static thread_local cudaError_t last_error = cudaSuccess;

cudaError_t emu_set_error(cudaError_t err) {
    if (err != cudaSuccess) last_error = err;
    return err;
}

// The process's one execution error (the emulation has one context per process) and whether a
// synchronising call has reported it yet.
static std::mutex execution_lock;
static cudaError_t execution_error = cudaSuccess;
static bool execution_error_reported = false;

void emu_set_execution_error(cudaError_t err, const char* what) {
    std::lock_guard<std::mutex> guard(execution_lock);
    if (execution_error != cudaSuccess) return;
    execution_error = err;
    fprintf(stderr, "CUDA emulation: %s: %s (reported by the next synchronising call)\n", what,
            cudaGetErrorString(err));
}
bool emu_context_failed(void) {
    std::lock_guard<std::mutex> guard(execution_lock);
    return execution_error != cudaSuccess;
}
cudaError_t emu_sticky_error(void) {
    std::lock_guard<std::mutex> guard(execution_lock);
    return execution_error_reported ? emu_set_error(execution_error) : cudaSuccess;
}
cudaError_t emu_sync_point(void) {
    std::lock_guard<std::mutex> guard(execution_lock);
    if (execution_error != cudaSuccess) execution_error_reported = true;
    return emu_set_error(execution_error);
}

cudaError_t cudaGetLastError(void) {
    cudaError_t sticky = emu_sticky_error();
    if (sticky != cudaSuccess) return sticky;
    cudaError_t err = last_error;
    last_error = cudaSuccess;
    return err;
}
cudaError_t cudaPeekAtLastError(void) {
    cudaError_t sticky = emu_sticky_error();
    return sticky != cudaSuccess ? sticky : last_error;
}

const char* cudaGetErrorName(cudaError_t error) {
    switch (error) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInitializationError: return "cudaErrorInitializationError";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
        case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
        case cudaErrorInvalidDeviceFunction: return "cudaErrorInvalidDeviceFunction";
        case cudaErrorNoDevice: return "cudaErrorNoDevice";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorNoKernelImageForDevice: return "cudaErrorNoKernelImageForDevice";
        case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
        case cudaErrorNotReady: return "cudaErrorNotReady";
        case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
        case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
        case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
        case cudaErrorNotSupported: return "cudaErrorNotSupported";
        case cudaErrorUnknown: return "cudaErrorUnknown";
    }
    return "unrecognized error code";
}

const char* cudaGetErrorString(cudaError_t error) {
    switch (error) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInitializationError: return "initialization error";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorInvalidDevicePointer: return "invalid device pointer";
        case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
        case cudaErrorInvalidDeviceFunction: return "invalid device function";
        case cudaErrorNoDevice: return "no CUDA-capable device is detected";
        case cudaErrorInvalidDevice: return "invalid device ordinal";
        case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
        case cudaErrorInvalidResourceHandle: return "invalid resource handle";
        case cudaErrorNotReady: return "device not ready";
        case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
        case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
        case cudaErrorLaunchFailure: return "unspecified launch failure";
        case cudaErrorNotSupported: return "operation not supported";
        case cudaErrorUnknown: return "unknown error";
    }
    return "unrecognized error code";
}

// ---------------------------------------------------------------- the device
static const size_t kTotalGlobalMem = (size_t)80 << 30;

// TIPCAP_EMU_DEVICES=n: the machine has n identical devices (default 1; 0: a machine without GPU).
// They share one memory, so every device pointer is valid on every device.
static int device_count(void) {
    static const int count = [] {
        const char* v = getenv("TIPCAP_EMU_DEVICES");
        if (!v || !*v) return 1;
        char* end;
        long n = strtol(v, &end, 10);
        if (*end || n < 0 || n > 64) emu_fatal("TIPCAP_EMU_DEVICES=%s: give a device count from 0 to 64", v);
        return (int)n;
    }();
    return count;
}
cudaError_t emu_check_device(int device) {
    if (device_count() == 0) return emu_set_error(cudaErrorNoDevice);
    return device >= 0 && device < device_count() ? cudaSuccess : emu_set_error(cudaErrorInvalidDevice);
}

// The current device belongs to the host thread, as in CUDA.
static thread_local int current_device = 0;

// A CUDA-aware MPI opens a context on the current device in MPI_Init: device 0 unless the program
// selected one before. A later cudaSetDevice to another device leaves that context behind, on a GPU
// that another rank uses. MPI_Initialized is looked up weakly: programs without MPI have none.
extern "C" int MPI_Initialized(int* flag) __attribute__((weak));
static int device_at_mpi_init = -1;

cudaError_t cudaGetDeviceCount(int* count) {
    if (!count) return emu_set_error(cudaErrorInvalidValue);
    *count = device_count();
    return *count ? cudaSuccess : emu_set_error(cudaErrorNoDevice);
}
cudaError_t cudaSetDevice(int device) {
    cudaError_t err = emu_check_device(device);
    if (err != cudaSuccess) return err;
    int mpi_initialized = 0;
    if (device_at_mpi_init < 0 && MPI_Initialized && MPI_Initialized(&mpi_initialized) == 0 && mpi_initialized)
        device_at_mpi_init = current_device;
    if (device_at_mpi_init >= 0 && device != device_at_mpi_init)
        emu_fatal("cudaSetDevice(%d) after MPI_Init: a CUDA-aware MPI opened a context on device %d in MPI_Init, which "
                  "this process keeps beside its context on device %d; select the device before MPI_Init (from the "
                  "launcher's local rank)", device, device_at_mpi_init, device);
    current_device = device;
    return cudaSuccess;
}
cudaError_t cudaGetDevice(int* device) {
    if (!device) return emu_set_error(cudaErrorInvalidValue);
    if (device_count() == 0) return emu_set_error(cudaErrorNoDevice);
    *device = current_device;
    return cudaSuccess;
}

// cudaGetDeviceProperties and cudaDeviceGetAttribute describe the device profile in use (emu_device.cpp).

// Launches and library calls complete before they return: what is left is an execution error.
cudaError_t cudaDeviceSynchronize(void) { return emu_sync_point(); }

// ---------------------------------------------------------------- poison and red zones
void emu_fill_poison(void* ptr, size_t bytes) {
    unsigned char* p = (unsigned char*)ptr;
    size_t i = 0;
    for (; i < bytes && ((uintptr_t)(p + i) & 7); i++) p[i] = ((uintptr_t)(p + i) & 1) ? 0x7f : 0xff;
    const uint64_t word = 0x7fff7fff7fff7fffull;
    for (; i + 8 <= bytes; i += 8) memcpy(p + i, &word, 8);
    for (; i < bytes; i++) p[i] = ((uintptr_t)(p + i) & 1) ? 0x7f : 0xff;
}

// The pattern is a hash of each 8-byte word's address: byte i of a zone is byte (address % 8) of the
// word hash of its aligned address, so whole words are filled and compared at once.
static inline uint64_t red_zone_word(uintptr_t aligned) { return (aligned * 0x9E3779B97F4A7C15ull) ^ 0xA5C3A5C3A5C3A5C3ull; }
static inline unsigned char red_zone_byte(const unsigned char* at) {
    uint64_t word = red_zone_word((uintptr_t)at & ~(uintptr_t)7);
    unsigned char bytes[8];
    memcpy(bytes, &word, 8);
    return bytes[(uintptr_t)at & 7];
}
void emu_fill_red_zone(void* ptr, size_t bytes) {
    unsigned char* p = (unsigned char*)ptr;
    unsigned char* end = p + bytes;
    for (; p < end && ((uintptr_t)p & 7); p++) *p = red_zone_byte(p);
    for (; p + 8 <= end; p += 8) {
        uint64_t word = red_zone_word((uintptr_t)p);
        memcpy(p, &word, 8);
    }
    for (; p < end; p++) *p = red_zone_byte(p);
}
long emu_find_red_zone_damage(const void* ptr, size_t bytes, long* last_damaged) {
    const unsigned char* p = (const unsigned char*)ptr;
    size_t head = (8 - ((uintptr_t)p & 7)) & 7, i = 0;
    bool clean = true;
    for (; i < head && i < bytes; i++) clean &= p[i] == red_zone_byte(p + i);
    for (; i + 8 <= bytes; i += 8) {
        uint64_t word;
        memcpy(&word, p + i, 8);
        clean &= word == red_zone_word((uintptr_t)(p + i));
    }
    for (; i < bytes; i++) clean &= p[i] == red_zone_byte(p + i);
    if (clean) return -1;
    long first = -1;  // damaged: find where, byte by byte
    for (i = 0; i < bytes; i++) {
        if (p[i] != red_zone_byte(p + i)) {
            if (first < 0) first = (long)i;
            *last_damaged = (long)i;
        }
    }
    return first;
}

// ---------------------------------------------------------------- device memory
// Each allocation: [front red zone][user bytes][back red zone up to the next 256-byte boundary
// plus kRedZone], from a 256-byte aligned block (cudaMalloc's alignment).
static const size_t kRedZone = 256;
static const size_t kAlign = 256;

namespace {
struct Allocation {
    size_t bytes;     // what the caller asked for
    size_t back;      // size of the back red zone
    uint64_t serial;  // n-th cudaMalloc of the program, for messages
};
std::mutex alloc_lock;
std::map<uintptr_t, Allocation> allocations;  // by user pointer
uint64_t alloc_serial;
size_t allocated_bytes;
std::set<void*> host_allocations;  // cudaMallocHost
}  // namespace

cudaError_t cudaMalloc(void** ptr, size_t size) {
    if (!ptr) return emu_set_error(cudaErrorInvalidValue);
    *ptr = nullptr;
    if (size == 0) return cudaSuccess;
    size_t rounded = (size + kAlign - 1) / kAlign * kAlign;
    size_t back = rounded - size + kRedZone;
    unsigned char* raw = (unsigned char*)aligned_alloc(kAlign, kRedZone + rounded + kRedZone);
    if (!raw) return emu_set_error(cudaErrorMemoryAllocation);
    unsigned char* user = raw + kRedZone;
    emu_fill_red_zone(raw, kRedZone);
    emu_fill_poison(user, size);
    emu_fill_red_zone(user + size, back);
    std::lock_guard<std::mutex> guard(alloc_lock);
    allocations[(uintptr_t)user] = Allocation{size, back, ++alloc_serial};
    emu_check_alloc(user, size, alloc_serial);
    allocated_bytes += size;
    *ptr = user;
    return cudaSuccess;
}

// Offsets are counted from the allocation's first byte (front zone: negative) or its end.
[[noreturn]] static void report_damage(const char* culprit, const Allocation& a, long first, long last, bool front) {
    if (front)
        emu_fatal("%s wrote out of bounds: bytes %ld..%ld before the start of a %zu-byte device allocation "
                  "(cudaMalloc #%llu) were overwritten",
                  culprit, (long)kRedZone - last, (long)kRedZone - first, a.bytes, (unsigned long long)a.serial);
    emu_fatal("%s wrote out of bounds: bytes %ld..%ld past the end of a %zu-byte device allocation "
              "(cudaMalloc #%llu) were overwritten",
              culprit, first, last, a.bytes, (unsigned long long)a.serial);
}

static void check_allocation(const char* culprit, uintptr_t user, const Allocation& a) {
    long last = -1;
    long first = emu_find_red_zone_damage((const void*)(user - kRedZone), kRedZone, &last);
    if (first >= 0) report_damage(culprit, a, first, last, true);
    first = emu_find_red_zone_damage((const void*)(user + a.bytes), a.back, &last);
    if (first >= 0) report_damage(culprit, a, first, last, false);
}

void emu_check_red_zones(const char* culprit) {
    std::lock_guard<std::mutex> guard(alloc_lock);
    for (const auto& [user, a] : allocations) check_allocation(culprit, user, a);
}
void emu_check_red_zones_before(const char* call) {
    std::string culprit = std::string("host code (through a device pointer, before ") + call + ")";
    emu_check_red_zones(culprit.c_str());
}

cudaError_t cudaFree(void* ptr) {
    if (!ptr) return cudaSuccess;
    std::lock_guard<std::mutex> guard(alloc_lock);
    auto it = allocations.find((uintptr_t)ptr);
    if (it == allocations.end()) {
        fprintf(stderr, "cuda-emu: cudaFree(%p): not a live device allocation (freed twice, or not from cudaMalloc)\n",
                ptr);
        return emu_set_error(cudaErrorInvalidValue);
    }
    check_allocation("host code (through a device pointer, before cudaFree)", it->first, it->second);
    allocated_bytes -= it->second.bytes;
    allocations.erase(it);
    emu_check_free(ptr);
    free((unsigned char*)ptr - kRedZone);
    return cudaSuccess;
}

int emu_device_range(const void* ptr, size_t bytes, size_t* alloc_bytes, size_t* offset) {
    uintptr_t p = (uintptr_t)ptr;
    std::lock_guard<std::mutex> guard(alloc_lock);
    auto it = allocations.upper_bound(p);  // first allocation starting after p
    if (it != allocations.end() && p + kRedZone >= it->first) {
        // inside the front red zone of the next allocation
        *alloc_bytes = it->second.bytes;
        *offset = 0;
        return -1;
    }
    if (it == allocations.begin()) return 0;
    --it;
    const Allocation& a = it->second;
    if (p >= it->first + a.bytes + a.back) return 0;
    *alloc_bytes = a.bytes;
    *offset = p - it->first;
    return p + bytes <= it->first + a.bytes ? 1 : -1;
}

void emu_require_device_range(const void* ptr, size_t bytes, const char* what) {
    size_t alloc_bytes = 0, offset = 0;
    int r = emu_device_range(ptr, bytes, &alloc_bytes, &offset);
    if (r == 0) emu_fatal("%s: %p is not device memory (not from cudaMalloc)", what, ptr);
    if (r < 0)
        emu_fatal("%s: %zu bytes at offset %zu of a %zu-byte device allocation run past its end", what, bytes, offset,
                  alloc_bytes);
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
    if (!free_bytes || !total_bytes) return emu_set_error(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> guard(alloc_lock);
    *total_bytes = kTotalGlobalMem;
    *free_bytes = kTotalGlobalMem - allocated_bytes;
    return cudaSuccess;
}

cudaError_t cudaDeviceReset(void) {
    std::lock_guard<std::mutex> guard(alloc_lock);
    for (const auto& [user, a] : allocations) free((unsigned char*)user - kRedZone);
    allocations.clear();
    allocated_bytes = 0;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
    if (!ptr) return emu_set_error(cudaErrorInvalidValue);
    *ptr = aligned_alloc(kAlign, (size + kAlign - 1) / kAlign * kAlign + (size == 0 ? kAlign : 0));
    if (!*ptr) return emu_set_error(cudaErrorMemoryAllocation);
    emu_fill_poison(*ptr, size);
    std::lock_guard<std::mutex> guard(alloc_lock);
    host_allocations.insert(*ptr);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags) { return cudaMallocHost(ptr, size); }
cudaError_t cudaFreeHost(void* ptr) {
    if (!ptr) return cudaSuccess;
    std::lock_guard<std::mutex> guard(alloc_lock);
    if (!host_allocations.erase(ptr)) return emu_set_error(cudaErrorInvalidValue);
    free(ptr);
    return cudaSuccess;
}

// A copy endpoint: device memory must lie inside one allocation; host memory must not be device
// memory when the kind says host (and the reverse).
static bool endpoint_ok(const char* call, const char* role, const void* ptr, size_t count, int want_device) {
    size_t alloc_bytes = 0, offset = 0;
    int r = emu_device_range(ptr, count, &alloc_bytes, &offset);
    if (r < 0) {
        fprintf(stderr, "cuda-emu: %s: the %s range of %zu bytes at offset %zu runs past the end of its %zu-byte "
                "device allocation\n", call, role, count, offset, alloc_bytes);
        return false;
    }
    if (want_device >= 0 && r != want_device) {
        fprintf(stderr, "cuda-emu: %s: the %s %p is %s memory, which the copy kind does not allow\n", call, role, ptr,
                r ? "device" : "host");
        return false;
    }
    return true;
}

static cudaError_t memcpy_checked(const char* call, void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
    if (count == 0) return cudaSuccess;
    if (!dst || !src) return emu_set_error(cudaErrorInvalidValue);
    int dst_device, src_device;
    switch (kind) {
        case cudaMemcpyHostToHost: dst_device = 0; src_device = 0; break;
        case cudaMemcpyHostToDevice: dst_device = 1; src_device = 0; break;
        case cudaMemcpyDeviceToHost: dst_device = 0; src_device = 1; break;
        case cudaMemcpyDeviceToDevice: dst_device = 1; src_device = 1; break;
        case cudaMemcpyDefault: dst_device = -1; src_device = -1; break;
        default: return emu_set_error(cudaErrorInvalidMemcpyDirection);
    }
    if (!endpoint_ok(call, "destination", dst, count, dst_device) ||
        !endpoint_ok(call, "source", src, count, src_device))
        return emu_set_error(cudaErrorInvalidValue);
    memmove(dst, src, count);
    emu_check_host_write(dst, count);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind kind) {
    if (emu_sync_point() != cudaSuccess) return cudaGetLastError();
    return memcpy_checked("cudaMemcpy", dst, src, count, kind);
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind kind, cudaStream_t stream) {
    return memcpy_checked("cudaMemcpyAsync", dst, src, count, kind);
}

static cudaError_t memset_checked(const char* call, void* ptr, int value, size_t count) {
    if (count == 0) return cudaSuccess;
    if (!endpoint_ok(call, "destination", ptr, count, 1)) return emu_set_error(cudaErrorInvalidValue);
    memset(ptr, value, count);
    emu_check_host_write(ptr, count);
    return cudaSuccess;
}
cudaError_t cudaMemset(void* ptr, int value, size_t count) {
    if (emu_sync_point() != cudaSuccess) return cudaGetLastError();
    return memset_checked("cudaMemset", ptr, value, count);
}
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream) {
    return memset_checked("cudaMemsetAsync", ptr, value, count);
}

// ---------------------------------------------------------------- streams and events
struct EmuStream {
    unsigned int flags;
};
struct EmuEvent {
    unsigned int flags;
    bool recorded;
    double ms;  // when it was recorded, CLOCK_MONOTONIC
};

namespace {
std::mutex handle_lock;
std::set<const void*> live_handles;
bool handle_live(const void* h) {
    std::lock_guard<std::mutex> guard(handle_lock);
    return live_handles.count(h) != 0;
}
void handle_add(const void* h) {
    std::lock_guard<std::mutex> guard(handle_lock);
    live_handles.insert(h);
}
bool handle_remove(const void* h) {
    std::lock_guard<std::mutex> guard(handle_lock);
    return live_handles.erase(h) != 0;
}
bool stream_ok(cudaStream_t s) { return s == nullptr || handle_live(s); }
}  // namespace

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
    if (!stream) return emu_set_error(cudaErrorInvalidValue);
    *stream = new EmuStream{flags};
    handle_add(*stream);
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t* stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    if (!stream || !handle_remove(stream)) return emu_set_error(cudaErrorInvalidResourceHandle);
    delete stream;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    if (!stream_ok(stream)) return emu_set_error(cudaErrorInvalidResourceHandle);
    return emu_sync_point();
}
cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    if (!stream_ok(stream) || !event || !handle_live(event)) return emu_set_error(cudaErrorInvalidResourceHandle);
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
    if (!event) return emu_set_error(cudaErrorInvalidValue);
    *event = new EmuEvent{flags, false, 0.0};
    handle_add(*event);
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, cudaEventDefault); }
cudaError_t cudaEventDestroy(cudaEvent_t event) {
    if (!event || !handle_remove(event)) return emu_set_error(cudaErrorInvalidResourceHandle);
    delete event;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (!event || !handle_live(event) || !stream_ok(stream)) return emu_set_error(cudaErrorInvalidResourceHandle);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    event->ms = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
    event->recorded = true;
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    if (!event || !handle_live(event)) return emu_set_error(cudaErrorInvalidResourceHandle);
    return emu_sync_point();
}
cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    if (!ms) return emu_set_error(cudaErrorInvalidValue);
    if (!start || !end || !handle_live(start) || !handle_live(end) || !start->recorded || !end->recorded ||
        ((start->flags | end->flags) & cudaEventDisableTiming))
        return emu_set_error(cudaErrorInvalidResourceHandle);
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}
