// Kernel execution under the emulation: worker threads run blocks; the threads of a block are
// cooperative fibers that run until they block (barrier, warp exchange) or exit.
//
// Fibers: each has a region of EMU_FIBER_REGION bytes aligned to its size: a guard area, the
// stack, the header (the Fiber below, found by device code from the stack pointer), then up to
// 64 KiB left unused (and protected) so that headers and stack tops spread over the cache sets
// (cuda_emu.h). A fiber switch saves the callee-saved registers on the stack and swaps stack
// pointers (x86-64), so it costs nanoseconds and no system call. Stacks are reused across blocks
// and launches.
//
// Scheduling within a block: a queue of ready fibers, first in first out (random order in shuffle
// mode). A fiber that blocks hands over directly to the next ready fiber; when none is ready the
// worker's scheduler resolves the block: all live fibers at one barrier -> release them; live
// fibers left but none can run -> deadlock, reported with where each one waits; none live -> done.
// A warp exchange completes as soon as the last non-exited lane of its mask arrives.
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "kernels/emu/emu_check.h"
#include "kernels/emu/emu_internal.h"

namespace {

constexpr size_t kPage = 4096;
// No access below a stack (64 KiB) nor in the unused end of its region: a frame that overruns the
// stack faults even when it is large (GCC does not probe the stack page by page by default).
constexpr size_t kGuardBytes = 64 * 1024;
constexpr size_t kStackBytes = EMU_FIBER_REGION - kGuardBytes - 64 * 1024 - EMU_FIBER_HEADER_BYTES;  // at the least
constexpr int kMaxBlockThreads = 1024;
constexpr size_t kSharedRedZone = 256;
constexpr uint64_t kPoison64 = 0x7fff7fff7fff7fffull;  // a shuffle from a lane that is not taking part

// ---------------------------------------------------------------- context switch
struct Context {
#if defined(__x86_64__)
    void* sp;
#else
    ucontext_t* uc;
#endif
};

}  // namespace

#if defined(__x86_64__)
// emu_switch_context(from, to): pushes the callee-saved registers, saves the stack pointer in
// *from, loads to's and pops its registers. A new fiber's stack is prepared so that the first
// switch "returns" into emu_fiber_trampoline with the fiber in r12 and its entry function in r13.
extern "C" void emu_switch_context(void** save_sp, void* next_sp);
extern "C" void emu_fiber_trampoline(void);
asm(R"(
    .pushsection .text
    .globl emu_switch_context
    .type emu_switch_context, @function
emu_switch_context:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch_context, .-emu_switch_context

    .globl emu_fiber_trampoline
    .type emu_fiber_trampoline, @function
emu_fiber_trampoline:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size emu_fiber_trampoline, .-emu_fiber_trampoline
    .popsection
)");
#endif

namespace {

struct Worker;
struct Fiber;
void fiber_main(Fiber* f);

void context_init(Context* c, char* stack_lo, char* stack_hi, Fiber* f) {
#if defined(__x86_64__)
    // r15 r14 r13 r12 rbx rbp, return address, then padding so that the trampoline starts with a
    // 16-byte aligned stack pointer (its call pushes the return address, as the ABI expects).
    void** sp = (void**)((uintptr_t)stack_hi & ~(uintptr_t)15) - 9;
    sp[0] = nullptr;
    sp[1] = nullptr;
    sp[2] = (void*)&fiber_main;
    sp[3] = (void*)f;
    sp[4] = nullptr;
    sp[5] = nullptr;
    sp[6] = (void*)&emu_fiber_trampoline;
    sp[7] = nullptr;
    sp[8] = nullptr;
    c->sp = sp;
#else
    if (!c->uc) c->uc = new ucontext_t();
    getcontext(c->uc);
    c->uc->uc_stack.ss_sp = stack_lo;
    c->uc->uc_stack.ss_size = (size_t)(stack_hi - stack_lo);
    c->uc->uc_link = nullptr;
    makecontext(c->uc, (void (*)(void))fiber_main, 1, f);  // pointer argument: glibc passes 64-bit values
#endif
}

inline void context_switch(Context* from, Context* to) {
#if defined(__x86_64__)
    emu_switch_context(&from->sp, to->sp);
#else
    if (!from->uc) from->uc = new ucontext_t();
    swapcontext(from->uc, to->uc);
#endif
}

// ---------------------------------------------------------------- launches, blocks, fibers
struct Launch {
    const char* name;
    dim3 grid, block;
    size_t shared_bytes;
    void (*invoke)(const void*);
    const void* closure;
    uint64_t n_blocks;
    int n_threads;                    // per block
    std::atomic<uint64_t> next_block;  // claimed by the workers
    std::vector<uint32_t> order;      // block order in shuffle mode, else empty
    uint64_t shuffle_seed;            // 0: off
    mutable std::atomic<bool> trapped{false};  // a thread called __trap(): no more blocks start
};

enum FiberState : uint8_t { READY, AT_BARRIER, AT_WARP, EXITED };
enum BarrierOp : int { BARRIER_PLAIN = -1, BARRIER_COUNT = 0, BARRIER_AND = 1, BARRIER_OR = 2 };

struct Fiber : EmuFiberHeader {
    Context ctx;
    Worker* worker;
    int lane, warp;  // of the linear thread index
    FiberState state;
    // where it waits: barrier or warp exchange
    const char* file;
    int line;
    int barrier_op;
    EmuWarpOp op;
    unsigned mask;
    int arg, width;
    uint64_t value;
    uint64_t result;  // the barrier's reduction or the exchange's result
};
static_assert(sizeof(Fiber) <= EMU_FIBER_HEADER_BYTES, "the fiber header must fit its place");

const char* op_name(EmuWarpOp op) {
    switch (op) {
        case EMU_SHFL_IDX: return "__shfl_sync";
        case EMU_SHFL_UP: return "__shfl_up_sync";
        case EMU_SHFL_DOWN: return "__shfl_down_sync";
        case EMU_SHFL_XOR: return "__shfl_xor_sync";
        case EMU_BALLOT: return "__ballot_sync";
        case EMU_VOTE_ANY: return "__any_sync";
        case EMU_VOTE_ALL: return "__all_sync";
        case EMU_SYNCWARP: return "__syncwarp";
    }
    return "?";
}
const char* barrier_name(int op) {
    switch (op) {
        case BARRIER_COUNT: return "__syncthreads_count";
        case BARRIER_AND: return "__syncthreads_and";
        case BARRIER_OR: return "__syncthreads_or";
    }
    return "__syncthreads";
}

struct Worker {
    int index = 0;
    pthread_t thread;
    std::mutex wake_lock;
    std::condition_variable wake;
    Launch* posted = nullptr;  // the launch to take part in
    std::vector<Fiber*> fibers;  // grows to the largest block seen
    Context scheduler;
    uint64_t switches = 0;

    // the block being run
    const Launch* launch = nullptr;
    EmuBlockInfo info;
    int n_threads = 0, live = 0;
    int at_barrier = 0, barrier_count = 0;  // fibers waiting at a barrier; how many with a true predicate
    bool barrier_divergent = false;         // they wait at different barriers
    Fiber* barrier_first = nullptr;
    Fiber* barrier_waiters[kMaxBlockThreads];
    unsigned warp_live[kMaxBlockThreads / 32];     // lanes that exist and have not exited
    unsigned warp_pending[kMaxBlockThreads / 32];  // lanes waiting at a warp exchange
    Fiber* ready[kMaxBlockThreads];                // ring buffer of ready fibers
    unsigned ready_head = 0, ready_count = 0;
    bool shuffle = false;
    uint64_t rng = 0;
    bool block_trapped = false;  // one of its threads called __trap(): its other fibers never resume

    // dynamic shared memory: [red zone][emu_largest_shared_optin()][red zone]
    unsigned char* dynamic_shared = nullptr;
    // this thread's zero-initialised TLS, where the __shared__ variables live
    unsigned char* shared_tls = nullptr;
    size_t shared_tls_bytes = 0;
};

inline uint64_t next_random(uint64_t* s) {  // splitmix64
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline Fiber* current_fiber() { return static_cast<Fiber*>(emu_fiber()); }

inline void push_ready(Worker& w, Fiber* f) {
    f->state = READY;
    w.ready[(w.ready_head + w.ready_count++) % kMaxBlockThreads] = f;
}
inline Fiber* pop_ready(Worker& w) {
    if (w.ready_count == 0) return nullptr;
    if (w.shuffle && w.ready_count > 1) {
        unsigned pick = (w.ready_head + (unsigned)(next_random(&w.rng) % w.ready_count)) % kMaxBlockThreads;
        Fiber* t = w.ready[pick];
        w.ready[pick] = w.ready[w.ready_head];
        w.ready[w.ready_head] = t;
    }
    Fiber* f = w.ready[w.ready_head];
    w.ready_head = (w.ready_head + 1) % kMaxBlockThreads;
    w.ready_count--;
    if (w.ready_count) {  // the fiber after it: its header and the top of its stack, just below
        const char* next = (const char*)w.ready[w.ready_head];
        __builtin_prefetch(next, 1);
        __builtin_prefetch(next - 64, 1);
        __builtin_prefetch(next - 128, 1);
    }
    return f;
}

// Leaves fiber f (which has blocked or exited) for the next ready fiber, or the scheduler.
inline void switch_away(Fiber* f) {
    Worker& w = *f->worker;
    Fiber* next = pop_ready(w);
    w.switches++;
    context_switch(&f->ctx, next ? &next->ctx : &w.scheduler);
}

// ---------------------------------------------------------------- reports
std::string where(const Worker& w) {
    char buf[256];
    const EmuBlockInfo& b = w.info;
    snprintf(buf, sizeof buf, "kernel '%s' <<<(%u,%u,%u), (%u,%u,%u)>>>, block (%u,%u,%u)", w.launch->name,
             b.grid_dim.x, b.grid_dim.y, b.grid_dim.z, b.block_dim.x, b.block_dim.y, b.block_dim.z, b.block_idx.x,
             b.block_idx.y, b.block_idx.z);
    return buf;
}
std::string where(const Fiber* f) {
    char buf[96];
    snprintf(buf, sizeof buf, ", thread (%u,%u,%u)", f->thread_idx.x, f->thread_idx.y, f->thread_idx.z);
    return where(*f->worker) + buf;
}

// "0-31,64,70-71" for the linear thread indices whose fibers satisfy pred
template <typename Pred>
std::string thread_ranges(const Worker& w, Pred pred) {
    std::string out;
    int i = 0;
    while (i < w.n_threads) {
        if (!pred(w.fibers[i])) { i++; continue; }
        int j = i;
        while (j + 1 < w.n_threads && pred(w.fibers[j + 1])) j++;
        char buf[32];
        snprintf(buf, sizeof buf, i == j ? "%s%d" : "%s%d-%d", out.empty() ? "" : ",", i, j);
        out += buf;
        i = j + 1;
    }
    return out;
}

bool same_site(const Fiber* a, const Fiber* b) {
    return a->line == b->line && (a->file == b->file || strcmp(a->file, b->file) == 0);
}

// Every place some live fiber waits, with the threads waiting there.
std::string waiting_places(const Worker& w) {
    std::string out;
    std::vector<bool> listed(w.n_threads, false);
    for (int i = 0; i < w.n_threads; i++) {
        const Fiber* f = w.fibers[i];
        if (listed[i] || f->state == EXITED || f->state == READY) continue;
        auto here = [&](const Fiber* g) {
            return g->state == f->state && same_site(g, f) &&
                   (f->state == AT_BARRIER ? g->barrier_op == f->barrier_op : g->op == f->op);
        };
        for (int j = i; j < w.n_threads; j++)
            if (here(w.fibers[j])) listed[j] = true;
        std::string threads = thread_ranges(w, here);
        const char* who = threads.find_first_of(",-") == std::string::npos ? "thread %s waits" : "threads %s wait";
        char buf[512];
        int len = snprintf(buf, sizeof buf, "\n  ");
        len += snprintf(buf + len, sizeof buf - len, who, threads.c_str());
        if (f->state == AT_BARRIER)
            snprintf(buf + len, sizeof buf - len, " at %s() at %s:%d", barrier_name(f->barrier_op), f->file, f->line);
        else
            snprintf(buf + len, sizeof buf - len, " at %s(0x%08x, ...) at %s:%d", op_name(f->op), f->mask, f->file,
                     f->line);
        out += buf;
    }
    std::string exited = thread_ranges(w, [](const Fiber* g) { return g->state == EXITED; });
    if (!exited.empty()) out += "\n  threads " + exited + " have exited";
    return out;
}

// ---------------------------------------------------------------- warp exchanges
// Source lane of a shuffle, as PTX shfl.sync defines it from the lane, b (lane or offset) and
// width: a source outside the caller's segment (or before it, for up) gives the caller's own value.
int shuffle_source(EmuWarpOp op, int lane, int arg, int width) {
    int b = arg & 31;
    int segmask = 32 - width;  // high lane bits that name the segment
    int min_lane = lane & segmask;
    int max_lane = op == EMU_SHFL_UP ? min_lane : (min_lane | (31 & ~segmask));
    int j;
    bool in_range;
    switch (op) {
        case EMU_SHFL_UP: j = lane - b; in_range = j >= max_lane; break;
        case EMU_SHFL_DOWN: j = lane + b; in_range = j <= max_lane; break;
        case EMU_SHFL_XOR: j = lane ^ b; in_range = j <= max_lane; break;
        default: j = min_lane | (b & ~segmask); in_range = j <= max_lane; break;
    }
    return in_range ? j : lane;
}

// If every non-exited lane of rep's mask has arrived, checks that they all wait at the same
// exchange, delivers the results and makes them ready (all but rep when rep is running).
bool try_complete(Worker& w, Fiber* rep, bool rep_running) {
    int warp = rep->warp;
    unsigned group = rep->mask & w.warp_live[warp];
    if ((w.warp_pending[warp] & group) != group) return false;
    Fiber** lanes = &w.fibers[warp * 32];
    unsigned ballot = 0;
    for (unsigned m = group; m; m &= m - 1) {
        Fiber* g = lanes[__builtin_ctz(m)];
        if (g->op != rep->op || g->mask != rep->mask || !same_site(g, rep))
            emu_fatal("%s: divergent warp exchange in warp %d: the lanes of mask 0x%08x must all reach the same "
                      "one, but%s",
                      where(w).c_str(), warp, rep->mask, waiting_places(w).c_str());
        if (g->value) ballot |= 1u << g->lane;
    }
    for (unsigned m = group; m; m &= m - 1) {
        Fiber* g = lanes[__builtin_ctz(m)];
        switch (rep->op) {
            case EMU_BALLOT: g->result = ballot; break;
            case EMU_VOTE_ANY: g->result = ballot != 0; break;
            case EMU_VOTE_ALL: g->result = ballot == group; break;
            case EMU_SYNCWARP: g->result = 0; break;
            default: {
                int j = shuffle_source(g->op, g->lane, g->arg, g->width);
                g->result = (group >> j) & 1 ? lanes[j]->value : kPoison64;
            }
        }
    }
    if ((rep->mask & ~w.warp_live[warp]) && emu_checks_on())
        emu_fatal("%s, warp %d: %s(0x%08x, ...) at %s:%d: the mask names lanes 0x%08x that have exited or do not "
                  "exist (synccheck; TIPCAP_EMU_CHECKS=0 turns the checks off)",
                  where(w).c_str(), warp, op_name(rep->op), rep->mask, rep->file, rep->line,
                  rep->mask & ~w.warp_live[warp]);
    w.warp_pending[warp] &= ~group;
    emu_check_exchange(warp, group);
    for (unsigned m = group; m; m &= m - 1) {
        Fiber* g = lanes[__builtin_ctz(m)];
        if (g != rep || !rep_running) push_ready(w, g);
        else g->state = READY;
    }
    return true;
}

// A lane exited: exchanges that waited only for it may complete now.
void lane_exited(Worker& w, Fiber* f) {
    w.warp_live[f->warp] &= ~(1u << f->lane);
    Fiber** lanes = &w.fibers[f->warp * 32];
    for (unsigned m = w.warp_pending[f->warp]; m; m &= m - 1) {
        Fiber* p = lanes[__builtin_ctz(m)];
        if ((w.warp_pending[f->warp] >> p->lane) & 1) try_complete(w, p, false);
    }
}

// ---------------------------------------------------------------- barriers
// Arrivals are recorded in the worker (the first one's site, whether another site was seen, the
// predicate count), so that releasing a barrier touches only the fibers waiting there.
uint64_t barrier_wait(const char* file, int line, int op, int predicate) {
    Fiber* f = current_fiber();
    Worker& w = *f->worker;
    f->state = AT_BARRIER;
    f->file = file;
    f->line = line;
    f->barrier_op = op;
    if (w.at_barrier == 0) w.barrier_first = f;
    else if (!same_site(f, w.barrier_first) || op != w.barrier_first->barrier_op) w.barrier_divergent = true;
    w.barrier_waiters[w.at_barrier++] = f;
    w.barrier_count += predicate != 0;
    switch_away(f);
    return f->result;
}

// Called by the scheduler when no fiber is ready.
void resolve_block(Worker& w) {
    if (w.at_barrier != w.live)
        emu_fatal("%s: deadlock: no thread can continue (a __syncthreads() that not all threads reach, or a warp "
                  "exchange whose lanes are elsewhere):%s",
                  where(w).c_str(), waiting_places(w).c_str());
    if (w.barrier_divergent)
        emu_fatal("%s: divergent __syncthreads(): all threads of a block must wait at the same barrier, but%s",
                  where(w).c_str(), waiting_places(w).c_str());
    if (w.live != w.n_threads && emu_checks_on())
        emu_fatal("%s: __syncthreads() reached by part of the block (synccheck; TIPCAP_EMU_CHECKS=0 turns the "
                  "checks off):%s",
                  where(w).c_str(), waiting_places(w).c_str());
    emu_check_barrier();
    uint64_t result = 0;
    switch (w.barrier_first->barrier_op) {
        case BARRIER_COUNT: result = (uint64_t)w.barrier_count; break;
        case BARRIER_AND: result = w.barrier_count == w.live; break;
        case BARRIER_OR: result = w.barrier_count != 0; break;
    }
    for (int i = 0; i < w.at_barrier; i++) {
        Fiber* f = w.barrier_waiters[i];
        f->result = result;
        push_ready(w, f);
    }
    w.at_barrier = 0;
    w.barrier_count = 0;
    w.barrier_divergent = false;
}

void fiber_main(Fiber* f) {
    Worker& w = *f->worker;
    w.launch->invoke(w.launch->closure);
    f->state = EXITED;
    w.live--;
    lane_exited(w, f);
    switch_away(f);
    __builtin_unreachable();
}

// ---------------------------------------------------------------- workers
// The zero-initialised TLS of the module that holds the kernels: on a worker, only device code
// runs, so it holds nothing but __shared__ variables and is poisoned at every block start.
struct TlsSearch {
    uintptr_t code;
    unsigned char* lo;
    size_t bytes;
};
int find_module_tls(struct dl_phdr_info* info, size_t, void* data) {
    TlsSearch* s = (TlsSearch*)data;
    bool holds_code = false;
    const ElfW(Phdr)* tls = nullptr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (ph.p_type == PT_LOAD && s->code >= start && s->code < start + ph.p_memsz) holds_code = true;
        if (ph.p_type == PT_TLS) tls = &ph;
    }
    if (!holds_code) return 0;
    if (tls && info->dlpi_tls_data) {
        s->lo = (unsigned char*)info->dlpi_tls_data + tls->p_filesz;
        s->bytes = tls->p_memsz - tls->p_filesz;
    }
    return 1;
}

void locate_shared_tls(Worker& w) {
    TlsSearch s{(uintptr_t)&emu_launch_impl, nullptr, 0};
    dl_iterate_phdr(find_module_tls, &s);
    uintptr_t errno_at = (uintptr_t)&errno;  // a static link puts the C library's TLS there too
    if (s.lo && !(errno_at >= (uintptr_t)s.lo && errno_at < (uintptr_t)s.lo + s.bytes)) {
        w.shared_tls = s.lo;
        w.shared_tls_bytes = s.bytes;
    }
}

// The protected pages at the end of a fiber's region, after its header.
char* unused_end(const Fiber* f) {
    return (char*)(((uintptr_t)f + EMU_FIBER_HEADER_BYTES + kPage - 1) & ~(uintptr_t)(kPage - 1));
}

void ensure_fibers(Worker& w, int n) {
    int have = (int)w.fibers.size();
    if (n <= have) return;
    int add = n - have;
    size_t bytes = (size_t)(add + 1) * EMU_FIBER_REGION;
    void* map = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (map == MAP_FAILED) emu_fatal("cannot map %zu bytes of fiber stacks: %s", bytes, strerror(errno));
    char* base = (char*)(((uintptr_t)map + EMU_FIBER_REGION - 1) & ~(EMU_FIBER_REGION - 1));
    for (int i = 0; i < add; i++) {
        char* region = base + (size_t)i * EMU_FIBER_REGION;
        Fiber* f = new (emu_fiber_header((uintptr_t)region)) Fiber();
        char* unused = unused_end(f);
        if (mprotect(region, kGuardBytes, PROT_NONE) != 0 ||
            (unused < region + EMU_FIBER_REGION &&
             mprotect(unused, (size_t)(region + EMU_FIBER_REGION - unused), PROT_NONE) != 0))
            emu_fatal("cannot protect the guard pages of a fiber stack: %s (too many worker threads? see "
                      "TIPCAP_EMU_WORKERS)", strerror(errno));
        f->worker = &w;
        w.fibers.push_back(f);
    }
}

char* region_of(const Fiber* f) { return (char*)((uintptr_t)f & ~(EMU_FIBER_REGION - 1)); }

void run_block(Worker& w, const Launch& L, uint64_t index) {
    uint64_t b = L.order.empty() ? index : L.order[index];
    w.launch = &L;
    w.info.block_idx = uint3{(unsigned)(b % L.grid.x), (unsigned)(b / L.grid.x % L.grid.y),
                             (unsigned)(b / ((uint64_t)L.grid.x * L.grid.y))};
    w.info.block_dim = L.block;
    w.info.grid_dim = L.grid;
    w.info.dynamic_shared = w.dynamic_shared + kSharedRedZone;
    w.info.dynamic_shared_bytes = L.shared_bytes;
    emu_fill_poison(w.info.dynamic_shared, L.shared_bytes);
    emu_fill_red_zone((unsigned char*)w.info.dynamic_shared + L.shared_bytes, kSharedRedZone);
    if (w.shared_tls) emu_fill_poison(w.shared_tls, w.shared_tls_bytes);
    emu_check_block_begin(w.index, L.name, &w.info, L.shared_bytes);

    int n = L.n_threads;
    ensure_fibers(w, n);
    w.n_threads = n;
    w.live = n;
    w.at_barrier = 0;
    w.barrier_count = 0;
    w.barrier_divergent = false;
    w.ready_head = 0;
    w.ready_count = 0;
    for (int i = 0; i < n; i++) {
        Fiber* f = w.fibers[i];
        f->thread_idx = uint3{i % L.block.x, i / L.block.x % L.block.y, i / (L.block.x * L.block.y)};
        f->block = &w.info;
        f->lane = i & 31;
        f->warp = i >> 5;
        context_init(&f->ctx, region_of(f) + kGuardBytes, (char*)f, f);
        push_ready(w, f);
    }
    for (int k = 0; k < (n + 31) / 32; k++) {
        int lanes = n - 32 * k < 32 ? n - 32 * k : 32;
        w.warp_live[k] = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1;
        w.warp_pending[k] = 0;
    }
    w.shuffle = L.shuffle_seed != 0;
    if (w.shuffle) w.rng = L.shuffle_seed ^ (b * 0xD1B54A32D192ED03ull);
    w.block_trapped = false;

    while (!w.block_trapped) {
        Fiber* f = pop_ready(w);
        if (!f) {
            if (w.live == 0) break;
            resolve_block(w);
            continue;
        }
        w.switches++;
        context_switch(&w.scheduler, &f->ctx);
    }
    emu_check_block_end();

    long last = -1;
    long first = emu_find_red_zone_damage((unsigned char*)w.info.dynamic_shared + L.shared_bytes, kSharedRedZone, &last);
    if (first >= 0)
        emu_fatal("%s wrote out of bounds of its %zu bytes of dynamic shared memory: bytes %ld..%ld past the end "
                  "were overwritten",
                  where(w).c_str(), L.shared_bytes, first, last);
    first = emu_find_red_zone_damage(w.dynamic_shared, kSharedRedZone, &last);
    if (first >= 0)
        emu_fatal("%s wrote out of bounds of its dynamic shared memory: bytes %ld..%ld before the start were "
                  "overwritten",
                  where(w).c_str(), (long)kSharedRedZone - last, (long)kSharedRedZone - first);
}

// The pool: each worker sleeps until a launch is posted to it, claims blocks until none are left,
// and the last one to finish wakes the launching thread. Only as many workers as there are blocks
// are woken.
struct Pool {
    std::vector<Worker*> workers;
    std::mutex done_lock;
    std::condition_variable done;
    std::atomic<int> running{0};
};
Pool* pool;               // created on the first launch; forgotten in a forked child
std::mutex launch_lock;   // one launch at a time

void* worker_main(void* arg) {
    Worker& w = *(Worker*)arg;
    locate_shared_tls(w);
    emu_check_worker_start(w.index, w.shared_tls, w.shared_tls_bytes, w.dynamic_shared + kSharedRedZone,
                           emu_largest_shared_optin());
    stack_t alternate;  // the crash handler runs here: the fiber's own stack may be exhausted
    alternate.ss_size = 64 * 1024;
    alternate.ss_sp = malloc(alternate.ss_size);
    alternate.ss_flags = 0;
    if (!alternate.ss_sp || sigaltstack(&alternate, nullptr) != 0) emu_fatal("cannot set a worker's signal stack");
    Pool& p = *pool;
    for (;;) {
        Launch* L;
        {
            std::unique_lock<std::mutex> guard(w.wake_lock);
            w.wake.wait(guard, [&] { return w.posted != nullptr; });
            L = w.posted;
            w.posted = nullptr;
        }
        for (;;) {
            uint64_t b = L->next_block.fetch_add(1, std::memory_order_relaxed);
            if (b >= L->n_blocks || L->trapped.load(std::memory_order_relaxed)) break;
            run_block(w, *L, b);
        }
        if (p.running.fetch_sub(1) == 1) {
            std::lock_guard<std::mutex> guard(p.done_lock);
            p.done.notify_one();
        }
    }
    return nullptr;
}

// One per CPU, at most 16 unless asked: each fiber costs the kernel two memory mappings (its stack,
// its guard areas), and Linux allows 65530 per process by default.
int worker_count() {
    const char* s = getenv("TIPCAP_EMU_WORKERS");
    int n = s ? atoi(s) : std::min((int)std::thread::hardware_concurrency(), 16);
    return n < 1 ? 1 : n > 64 ? 64 : n;
}

void forget_pool_in_child() { pool = nullptr; }

bool on_worker_thread() {
    if (!pool) return false;
    for (Worker* w : pool->workers)
        if (pthread_equal(w->thread, pthread_self())) return true;
    return false;
}

// ---------------------------------------------------------------- crashes inside kernels
// A fault on a fiber stack's guard page is a stack overflow; any other fault while a fiber runs is
// reported with the kernel, block and thread (an invalid pointer, usually). Faults elsewhere go to
// the previous handler.
struct sigaction previous_segv, previous_bus;

Fiber* fiber_of(uintptr_t address) {
    if (!pool) return nullptr;
    char* region = (char*)(address & ~(EMU_FIBER_REGION - 1));
    for (Worker* w : pool->workers)
        for (Fiber* f : w->fibers)
            if (region_of(f) == region) return f;
    return nullptr;
}

// The fiber whose stack overran into `address`: below its stack (its guard area), or below its
// region (the unused end of the region under it).
Fiber* overflowed_fiber(uintptr_t address) {
    Fiber* f = fiber_of(address);
    if (!f) return nullptr;
    if ((address & (EMU_FIBER_REGION - 1)) < kGuardBytes) return f;
    if (address >= (uintptr_t)unused_end(f)) return fiber_of(address + EMU_FIBER_REGION);
    return nullptr;
}

void crash_handler(int sig, siginfo_t* info, void* context) {
    uintptr_t address = (uintptr_t)info->si_addr;
    Fiber* overflowed = overflowed_fiber(address);
    if (overflowed)
        emu_fatal("%s: stack overflow: the thread used all of its fiber stack (%zu KiB or more; deep recursion or "
                  "large local arrays)",
                  where(overflowed).c_str(), kStackBytes / 1024);
#if defined(__x86_64__)
    Fiber* running = fiber_of((uintptr_t)((ucontext_t*)context)->uc_mcontext.gregs[REG_RSP]);
    if (running)
        emu_fatal("%s: %s at address %p (an invalid pointer, or an index far out of bounds)", where(running).c_str(),
                  sig == SIGSEGV ? "segmentation fault" : "bus error", info->si_addr);
#endif
    sigaction(sig, sig == SIGSEGV ? &previous_segv : &previous_bus, nullptr);  // the fault repeats there
}

void install_crash_handler() {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = crash_handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
    sigaction(SIGBUS, &sa, &previous_bus);
}

Pool& get_pool() {
    if (pool) return *pool;
    static bool process_hooks_installed = false;
    if (!process_hooks_installed) {
        pthread_atfork(nullptr, nullptr, forget_pool_in_child);
        install_crash_handler();
        process_hooks_installed = true;
    }
    Pool* p = new Pool();
    int n = worker_count();
    pool = p;
    for (int i = 0; i < n; i++) {
        Worker* w = new Worker();
        w->index = i;
        size_t dyn = kSharedRedZone + emu_largest_shared_optin() + kSharedRedZone;
        w->dynamic_shared = (unsigned char*)aligned_alloc(256, dyn);
        emu_fill_red_zone(w->dynamic_shared, kSharedRedZone);
        p->workers.push_back(w);
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&w->thread, &attr, worker_main, w) != 0) emu_fatal("cannot start emulator worker thread");
        pthread_attr_destroy(&attr);
    }
    return *p;
}

uint64_t shuffle_seed_from_env() {
    const char* s = getenv("TIPCAP_EMU_SHUFFLE");
    return s ? strtoull(s, nullptr, 0) : 0;
}
uint64_t shuffle_seed = shuffle_seed_from_env();
uint64_t launch_serial;

std::atomic<uint64_t> stat_launches, stat_blocks, stat_threads, stat_switches;

}  // namespace

// ---------------------------------------------------------------- public entry points
int emu_shuffle_active = shuffle_seed != 0;

void emu_set_shuffle(uint64_t seed) {
    std::lock_guard<std::mutex> one_launch(launch_lock);
    shuffle_seed = seed;
    launch_serial = 0;
    emu_shuffle_active = seed != 0;
}
uint64_t emu_get_shuffle(void) { return shuffle_seed; }

EmuStats emu_stats(void) {
    return EmuStats{stat_launches.load(), stat_blocks.load(), stat_threads.load(), stat_switches.load()};
}

void emu_launch_impl(const char* name, const void* kernel, bool has_ptxas_report, dim3 grid, dim3 block,
                     size_t shared_bytes, void (*invoke)(const void*), const void* closure) {
    if (emu_check_launch(name, kernel, has_ptxas_report, grid, block, shared_bytes) != cudaSuccess) return;
    const uint64_t threads = (uint64_t)block.x * block.y * block.z;

    if (on_worker_thread())
        emu_fatal("%s: a kernel launched kernel '%s': launches from device code (dynamic parallelism) are not "
                  "emulated", where(*current_fiber()->worker).c_str(), name);
    if (emu_context_failed()) {  // a GPU runs nothing after an execution error
        emu_sticky_error();
        return;
    }
    std::string culprit = std::string("kernel '") + name + "'";
    emu_check_red_zones_before(culprit.c_str());
    std::lock_guard<std::mutex> one_launch(launch_lock);
    Pool& p = get_pool();
    Launch L;
    L.name = name;
    L.grid = grid;
    L.block = block;
    L.shared_bytes = shared_bytes;
    L.invoke = invoke;
    L.closure = closure;
    L.n_blocks = (uint64_t)grid.x * grid.y * grid.z;
    L.n_threads = (int)threads;
    L.next_block.store(0);
    launch_serial++;
    uint64_t launch_rng = shuffle_seed ^ (launch_serial * 0xA24BAED4963EE407ull);
    L.shuffle_seed = shuffle_seed ? next_random(&launch_rng) | 1 : 0;
    if (L.shuffle_seed) {
        uint64_t rng = L.shuffle_seed;
        L.order.resize(L.n_blocks);
        for (uint64_t i = 0; i < L.n_blocks; i++) L.order[i] = (uint32_t)i;
        for (uint64_t i = L.n_blocks; i > 1; i--) std::swap(L.order[i - 1], L.order[next_random(&rng) % i]);
    }

    emu_check_launch_begin();
    uint64_t switches_before = 0;
    for (Worker* w : p.workers) switches_before += w->switches;
    int participants = (int)std::min<uint64_t>(p.workers.size(), L.n_blocks);
    p.running.store(participants);
    for (int i = 0; i < participants; i++) {
        Worker& w = *p.workers[i];
        {
            std::lock_guard<std::mutex> guard(w.wake_lock);
            w.posted = &L;
        }
        w.wake.notify_one();
    }
    {
        std::unique_lock<std::mutex> guard(p.done_lock);
        p.done.wait(guard, [&] { return p.running.load() == 0; });
    }
    uint64_t switches_after = 0;
    for (Worker* w : p.workers) switches_after += w->switches;

    stat_launches++;
    stat_blocks += L.n_blocks;
    stat_threads += L.n_blocks * threads;
    stat_switches += switches_after - switches_before;

    emu_check_red_zones(culprit.c_str());
}

void emu_dynamic_shared_over_declared(size_t declared_max) {
    const Worker& w = *current_fiber()->worker;
    emu_fatal("%s: launched with %zu bytes of dynamic shared memory, more than the %zu its DYNAMIC_SHARED declares",
              where(w).c_str(), w.launch->shared_bytes, declared_max);
}

void emu_syncthreads(const char* file, int line) { barrier_wait(file, line, BARRIER_PLAIN, 1); }
int emu_syncthreads_reduce(const char* file, int line, int op, int predicate) {
    return (int)barrier_wait(file, line, op, predicate);
}

uint64_t emu_warp_exchange(const char* file, int line, EmuWarpOp op, unsigned mask, uint64_t value, int arg,
                           int width) {
    Fiber* f = current_fiber();
    Worker& w = *f->worker;
    if (!((mask >> f->lane) & 1))
        emu_fatal("%s: %s(0x%08x, ...) at %s:%d: the mask must name the calling lane %d", where(f).c_str(), op_name(op),
                  mask, file, line, f->lane);
    if (width < 1 || width > 32 || (width & (width - 1)))
        emu_fatal("%s: %s at %s:%d: width %d is not a power of 2 in 1..32", where(f).c_str(), op_name(op), file, line,
                  width);
    f->op = op;
    f->file = file;
    f->line = line;
    f->mask = mask;
    f->arg = arg;
    f->width = width;
    f->value = value;
    f->state = AT_WARP;
    w.warp_pending[f->warp] |= 1u << f->lane;
    if (!try_complete(w, f, true)) switch_away(f);
    else if (w.shuffle) emu_yield();
    return f->result;
}

unsigned emu_activemask(void) {
    Fiber* f = current_fiber();
    return f->worker->warp_live[f->warp];
}

// The whole grid stops: this block's other threads never resume and no further block starts.
void emu_trap(const char* file, int line) {
    Fiber* f = current_fiber();
    Worker& w = *f->worker;
    std::string what = where(f) + ": __trap() at " + file + ":" + std::to_string(line);
    emu_set_execution_error(cudaErrorLaunchFailure, what.c_str());
    w.launch->trapped.store(true);
    w.block_trapped = true;
    w.switches++;
    context_switch(&f->ctx, &w.scheduler);
    __builtin_unreachable();
}

void emu_yield(void) {
    if (!on_worker_thread()) return;  // an atomic in host code
    Fiber* f = current_fiber();
    Worker& w = *f->worker;
    push_ready(w, f);
    Fiber* next = pop_ready(w);
    if (next == f) return;
    w.switches++;
    context_switch(&f->ctx, &next->ctx);
}
