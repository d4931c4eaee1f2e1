// Race and initialisation checks (see emu_check.h and kernels/emu/README.md, "Checks").
//
// Kernel code is compiled with -fsanitize=thread: each load and store calls __tsan_readN /
// __tsan_writeN below. Accesses to shared memory (a worker's static __shared__ TLS and its dynamic
// buffer) and to device allocations are checked against a shadow of two 64-bit entries per 2-byte
// granule: the last write and the last read(s). An entry is {worker, thread, clock}: each worker
// has a clock that ticks at every block start, barrier release and warp exchange, so "an access
// happened before the last barrier" is a comparison of clocks. Two accesses of one granule, at least
// one a write, are ordered when they come from one thread, from different launches (or, for
// shared memory, different blocks), or from one block with a barrier between them, or from one
// warp with a warp exchange of both lanes between them; otherwise they race. Different blocks are
// never ordered (atomics are not checked: they are not races).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/emu/emu_check.h"
#include "kernels/emu/emu_internal.h"

namespace {

// Shadow entry: bits 0-31 clock, 32-41 thread (linear index), 42-47 worker, then flags; 0: none.
constexpr uint64_t kMany = 1ull << 48;        // read by several threads of the block
constexpr uint64_t kManyBlocks = 1ull << 49;  // read by several blocks of the launch
constexpr uint64_t kHost = 1ull << 50;        // written by host code or a library call
inline uint32_t entry_clock(uint64_t e) { return (uint32_t)e; }
inline int entry_thread(uint64_t e) { return (int)((e >> 32) & 1023); }
inline int entry_worker(uint64_t e) { return (int)((e >> 42) & 63); }

struct Region {
    uintptr_t lo, hi;
    uint64_t* shadow;  // [write, read] per 2-byte granule
    uint64_t serial;   // cudaMalloc number; 0: shared memory
};

struct State {  // one per worker
    int worker;
    uint32_t clock = 1;
    uint32_t launch_start = 1, block_start = 1, barrier = 1;
    uint32_t exchanged[1024];  // clock of each thread's last warp exchange
    Region statics, dynamic;
    const char* kernel = nullptr;
    const EmuBlockInfo* info = nullptr;
    size_t cache = 0;  // index in `snapshot` of the last device allocation hit
};

bool checks_from_env() {
    const char* s = getenv("TIPCAP_EMU_CHECKS");
    return !(s && strcmp(s, "0") == 0);
}
bool enabled = checks_from_env();

std::mutex lock;
std::map<uintptr_t, Region> allocations;  // by first byte
bool allocations_changed = true;
std::vector<Region> snapshot;  // sorted, taken at launch start; workers read it during the launch
State* states[64];
int n_states;
// The worker running a block with checks on, else -1 (an initialised thread_local: it lives in
// .tdata, not in the zero-initialised TLS that holds the __shared__ variables and is poisoned).
thread_local int current = -1;

uint64_t* map_shadow(size_t bytes) {
    size_t len = (bytes + 1) / 2 * 2 * sizeof(uint64_t);
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) emu_fatal("cannot map %zu bytes of shadow memory for the race checks", len);
    return (uint64_t*)p;
}
void unmap_shadow(uint64_t* shadow, size_t bytes) { munmap(shadow, (bytes + 1) / 2 * 2 * sizeof(uint64_t)); }

inline int linear_thread(const EmuFiberHeader* h) {
    const dim3& d = h->block->block_dim;
    return (int)(h->thread_idx.x + d.x * (h->thread_idx.y + d.y * h->thread_idx.z));
}
inline uint64_t make_entry(const State* s, int tid) {
    return s->clock | (uint64_t)tid << 32 | (uint64_t)s->worker << 42;
}

// Whether the access recorded in e happened before thread tid's access now.
inline bool ordered(const State* s, uint64_t e, int tid, bool global) {
    if (e & kHost) return true;
    uint32_t c = entry_clock(e);
    if (global) {
        int w = entry_worker(e);
        if (w != s->worker) return c < states[w]->launch_start;  // an earlier launch, or another block now
        if (c < s->launch_start) return true;
        if (c < s->block_start || (e & kManyBlocks)) return false;  // another block of this launch
    } else if (c < s->block_start) {
        return true;  // another block's shared memory
    }
    if (c < s->barrier) return true;
    if (e & kMany) return false;
    int t = entry_thread(e);
    if (t == tid) return true;
    return (t >> 5) == (tid >> 5) && c < s->exchanged[t] && c < s->exchanged[tid];
}

std::string thread_name(const State* s, int tid) {
    const dim3& d = s->info->block_dim;
    char buf[64];
    snprintf(buf, sizeof buf, "thread (%d,%d,%d)", tid % (int)d.x, tid / (int)d.x % (int)d.y,
             tid / (int)(d.x * d.y));
    return buf;
}

std::string block_name(const State* s) {
    char buf[256];
    const EmuBlockInfo& b = *s->info;
    snprintf(buf, sizeof buf, "kernel '%s' <<<(%u,%u,%u), (%u,%u,%u)>>>, block (%u,%u,%u)", s->kernel, b.grid_dim.x,
             b.grid_dim.y, b.grid_dim.z, b.block_dim.x, b.block_dim.y, b.block_dim.z, b.block_idx.x, b.block_idx.y,
             b.block_idx.z);
    return buf;
}

std::string place(const State* s, const Region* r, uintptr_t a) {
    char buf[160];
    if (r->serial)
        snprintf(buf, sizeof buf, "byte %zu of a %zu-byte device allocation (cudaMalloc #%llu)", (size_t)(a - r->lo),
                 (size_t)(r->hi - r->lo), (unsigned long long)r->serial);
    else
        snprintf(buf, sizeof buf, "%s shared memory at byte %zu (%p)", r == &s->statics ? "static __shared__" : "dynamic",
                 (size_t)(a - r->lo), (void*)a);
    return buf;
}

[[noreturn]] void report_race(const State* s, const Region* r, uintptr_t a, int tid, bool write, uint64_t e,
                              bool other_wrote, bool global) {
    std::string other;
    int t = entry_thread(e);
    bool same_block = !global || (entry_worker(e) == s->worker && entry_clock(e) >= s->block_start &&
                                  !(e & kManyBlocks));
    if (!same_block) other = "a thread of another block of this launch";
    else if (e & kMany) other = "several threads of this block";
    else other = thread_name(s, t);
    emu_fatal("%s: race on %s: %s %s it while %s %s it with no __syncthreads()%s between them (racecheck; "
              "TIPCAP_EMU_CHECKS=0 turns the checks off)",
              block_name(s).c_str(), place(s, r, a).c_str(), thread_name(s, tid).c_str(), write ? "writes" : "reads",
              other.c_str(), other_wrote ? "wrote" : "read", same_block ? " or warp exchange" : " (blocks are unordered)");
}

const Region* find_allocation(State* s, uintptr_t a) {
    size_t n = snapshot.size();
    if (n == 0) return nullptr;
    if (s->cache < n && a - snapshot[s->cache].lo < snapshot[s->cache].hi - snapshot[s->cache].lo)
        return &snapshot[s->cache];
    if (a < snapshot[0].lo || a >= snapshot[n - 1].hi) return nullptr;
    size_t i = (size_t)(std::upper_bound(snapshot.begin(), snapshot.end(), a,
                                         [](uintptr_t x, const Region& r) { return x < r.lo; }) -
                        snapshot.begin());
    if (i == 0 || a >= snapshot[i - 1].hi) return nullptr;
    s->cache = i - 1;
    return &snapshot[i - 1];
}

inline uint64_t load(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
inline void store(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

void access(uintptr_t a, size_t n, bool write) {
    int w = current;
    if (w < 0 || n == 0) return;
    State* s = states[w];
    // the fiber's own stack and its header
    if (((a ^ (uintptr_t)__builtin_frame_address(0)) & ~(EMU_FIBER_REGION - 1)) == 0) return;
    if (a - (uintptr_t)s->info < sizeof(EmuBlockInfo)) return;
    const Region* r;
    bool global = false;
    if (a - s->statics.lo < s->statics.hi - s->statics.lo) r = &s->statics;
    else if (a - s->dynamic.lo < s->dynamic.hi - s->dynamic.lo) r = &s->dynamic;
    else if ((r = find_allocation(s, a))) global = true;
    else return;
    uintptr_t end = std::min(a + n, r->hi);
    int tid = linear_thread(emu_fiber());
    uint64_t me = make_entry(s, tid);
    for (uintptr_t g = (a - r->lo) >> 1, last = (end - 1 - r->lo) >> 1; g <= last; g++) {
        uint64_t* sh = r->shadow + 2 * g;
        uint64_t wr = load(sh), rd = load(sh + 1);
        uintptr_t at = r->lo + 2 * g;
        if (wr && !ordered(s, wr, tid, global)) report_race(s, r, at, tid, write, wr, true, global);
        if (write) {
            if (rd && !ordered(s, rd, tid, global)) report_race(s, r, at, tid, true, rd, false, global);
            if (wr != me) store(sh, me);
            continue;
        }
        if (global && !wr)
            emu_fatal("%s: %s reads %s, which nothing has written (initcheck: not by a kernel, a copy, a memset "
                      "or a library call; TIPCAP_EMU_CHECKS=0 turns the checks off)",
                      block_name(s).c_str(), thread_name(s, tid).c_str(), place(s, r, at).c_str());
        if (rd == me) continue;
        uint64_t next = me;
        if (rd && !ordered(s, rd, tid, global)) {  // another reader since the last barrier
            bool other_block = global && (entry_worker(rd) != s->worker || entry_clock(rd) < s->block_start);
            next = me | kMany | (rd & kManyBlocks) | (other_block ? kManyBlocks : 0);
            if (next == rd) continue;
        }
        store(sh + 1, next);
    }
}

}  // namespace

// ---------------------------------------------------------------- hooks
bool emu_checks_on(void) { return enabled; }
void emu_set_checks(int on) { enabled = on != 0; }

void emu_check_alloc(void* user, size_t bytes, uint64_t serial) {
    if (!enabled) return;
    std::lock_guard<std::mutex> guard(lock);
    allocations[(uintptr_t)user] = Region{(uintptr_t)user, (uintptr_t)user + bytes, map_shadow(bytes), serial};
    allocations_changed = true;
}

void emu_check_free(void* user) {
    std::lock_guard<std::mutex> guard(lock);
    auto it = allocations.find((uintptr_t)user);
    if (it == allocations.end()) return;
    unmap_shadow(it->second.shadow, it->second.hi - it->second.lo);
    allocations.erase(it);
    allocations_changed = true;
}

void emu_check_host_write(const void* ptr, size_t bytes) {
    uintptr_t a = (uintptr_t)ptr;
    std::lock_guard<std::mutex> guard(lock);
    auto it = allocations.upper_bound(a);
    if (it == allocations.begin() || bytes == 0) return;
    const Region& r = (--it)->second;
    if (a >= r.hi) return;
    uintptr_t end = std::min(a + bytes, r.hi);
    for (uintptr_t g = (a - r.lo) >> 1, last = (end - 1 - r.lo) >> 1; g <= last; g++) {
        r.shadow[2 * g] = kHost;
        r.shadow[2 * g + 1] = 0;
    }
}

void emu_check_launch_begin(void) {
    std::lock_guard<std::mutex> guard(lock);
    if (allocations_changed) {
        snapshot.clear();
        for (const auto& [lo, r] : allocations) snapshot.push_back(r);
        allocations_changed = false;
    }
    for (int i = 0; i < n_states; i++) {  // the workers are idle
        State* s = states[i];
        if (!s) continue;
        s->launch_start = ++s->clock;
        s->cache = 0;
    }
}

void emu_check_worker_start(int worker, const void* static_shared, size_t static_bytes, const void* dynamic_shared,
                            size_t dynamic_bytes) {
    if (worker < 0 || worker >= 64) emu_fatal("the race checks handle at most 64 workers (TIPCAP_EMU_WORKERS)");
    State* s = new State();
    s->worker = worker;
    s->statics = Region{(uintptr_t)static_shared, (uintptr_t)static_shared + static_bytes,
                        static_bytes ? map_shadow(static_bytes) : nullptr, 0};
    s->dynamic = Region{(uintptr_t)dynamic_shared, (uintptr_t)dynamic_shared, map_shadow(dynamic_bytes), 0};
    std::lock_guard<std::mutex> guard(lock);
    states[worker] = s;
    n_states = std::max(n_states, worker + 1);
}

void emu_check_block_begin(int worker, const char* name, const EmuBlockInfo* info, size_t dynamic_bytes) {
    State* s = states[worker];
    if (!s || !enabled) {
        current = -1;
        return;
    }
    s->kernel = name;
    s->info = info;
    s->block_start = s->barrier = ++s->clock;
    s->dynamic.hi = s->dynamic.lo + dynamic_bytes;
    current = s->worker;
}

void emu_check_block_end(void) { current = -1; }

void emu_check_barrier(void) {
    if (current < 0) return;
    State* s = states[current];
    s->barrier = ++s->clock;
}

void emu_check_exchange(int warp, unsigned group) {
    if (current < 0) return;
    State* s = states[current];
    uint32_t c = ++s->clock;
    for (unsigned m = group; m; m &= m - 1) s->exchanged[warp * 32 + __builtin_ctz(m)] = c;
}

// ---------------------------------------------------------------- ThreadSanitizer's entry points
// What GCC's -fsanitize=thread instrumentation calls. Atomics are performed (sequentially
// consistent, whatever order is asked: the stronger order is always correct) and not checked.
extern "C" {
void __tsan_init(void) {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit(void) {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
#define EMU_TSAN_ACCESS_(n)                                                           \
    void __tsan_read##n(void* a) { access((uintptr_t)a, n, false); }                  \
    void __tsan_write##n(void* a) { access((uintptr_t)a, n, true); }                  \
    void __tsan_unaligned_read##n(void* a) { access((uintptr_t)a, n, false); }        \
    void __tsan_unaligned_write##n(void* a) { access((uintptr_t)a, n, true); }
EMU_TSAN_ACCESS_(1)
EMU_TSAN_ACCESS_(2)
EMU_TSAN_ACCESS_(4)
EMU_TSAN_ACCESS_(8)
EMU_TSAN_ACCESS_(16)
#undef EMU_TSAN_ACCESS_
void __tsan_read_range(void* a, unsigned long n) { access((uintptr_t)a, n, false); }
void __tsan_write_range(void* a, unsigned long n) { access((uintptr_t)a, n, true); }

#define EMU_SC_ __ATOMIC_SEQ_CST
#define EMU_TSAN_ATOMICS_(bits, T)                                                                               \
    T __tsan_atomic##bits##_load(const volatile T* a, int) { return __atomic_load_n(a, EMU_SC_); }               \
    void __tsan_atomic##bits##_store(volatile T* a, T v, int) { __atomic_store_n(a, v, EMU_SC_); }               \
    T __tsan_atomic##bits##_exchange(volatile T* a, T v, int) { return __atomic_exchange_n(a, v, EMU_SC_); }     \
    T __tsan_atomic##bits##_fetch_add(volatile T* a, T v, int) { return __atomic_fetch_add(a, v, EMU_SC_); }     \
    T __tsan_atomic##bits##_fetch_sub(volatile T* a, T v, int) { return __atomic_fetch_sub(a, v, EMU_SC_); }     \
    T __tsan_atomic##bits##_fetch_and(volatile T* a, T v, int) { return __atomic_fetch_and(a, v, EMU_SC_); }     \
    T __tsan_atomic##bits##_fetch_or(volatile T* a, T v, int) { return __atomic_fetch_or(a, v, EMU_SC_); }       \
    T __tsan_atomic##bits##_fetch_xor(volatile T* a, T v, int) { return __atomic_fetch_xor(a, v, EMU_SC_); }     \
    T __tsan_atomic##bits##_fetch_nand(volatile T* a, T v, int) { return __atomic_fetch_nand(a, v, EMU_SC_); }   \
    int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* c, T v, int, int) {                      \
        return __atomic_compare_exchange_n(a, c, v, false, EMU_SC_, EMU_SC_);                                    \
    }                                                                                                            \
    int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* c, T v, int, int) {                        \
        return __atomic_compare_exchange_n(a, c, v, false, EMU_SC_, EMU_SC_);                                    \
    }                                                                                                            \
    T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T c, T v, int, int) {                            \
        __atomic_compare_exchange_n(a, &c, v, false, EMU_SC_, EMU_SC_);                                          \
        return c;                                                                                                \
    }
EMU_TSAN_ATOMICS_(8, uint8_t)
EMU_TSAN_ATOMICS_(16, uint16_t)
EMU_TSAN_ATOMICS_(32, uint32_t)
EMU_TSAN_ATOMICS_(64, uint64_t)
#undef EMU_TSAN_ATOMICS_
#undef EMU_SC_
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
}
