// NCCL across the processes of one machine, for the CUDA emulation (emu_nccl.h; kernels/emu/README.md).
//
// A communicator is a POSIX shared-memory segment named after its unique id. Each rank claims its
// slot there. A collective posts a description of the call, meets the other ranks at a barrier and
// compares their descriptions, then moves the data through a staging area in chunks: every rank
// copies its chunk in, barrier, every rank combines all chunks in rank order, barrier. A barrier is
// a counter per rank that only grows; a rank waiting for the others sleeps in short naps and checks
// that the ranks it waits for are alive, have not left, and are not later than the timeout.
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "kernels/emu/emu_internal.h"
#include "kernels/emu/emu_nccl.h"

namespace {

const int kMaxRanks = 64;
const size_t kStagingBytes = (size_t)4 << 20;  // split evenly among the ranks
const char kIdMark[16] = "tipcap-emu-nccl";

struct IdContents {  // the start of ncclUniqueId.internal
    char mark[16];
    unsigned char nonce[16];
};

enum CallKind : int { kAllReduce = 1, kBroadcast = 2 };
struct Call {
    uint64_t number;  // 1, 2, ... on each communicator
    int kind, type, op, root;
    uint64_t count;
};

enum SlotState : int { kFree = 0, kJoined = 1, kLeft = 2 };
struct Slot {
    std::atomic<int> pid;         // the process that claimed this rank
    std::atomic<int> state;       // SlotState
    std::atomic<uint64_t> phase;  // barriers this rank has reached
    int device;                   // its current CUDA device at init
    Call call;                    // its current collective
};

struct Segment {
    std::atomic<int> nranks;  // set by the first rank to arrive
    std::atomic<int> formed;  // set by the first rank to see every rank joined: a rank that then ends
                              // does not fail the others' init
    Slot slots[kMaxRanks];
    alignas(64) unsigned char staging[kStagingBytes];
};

__attribute__((format(printf, 2, 3))) ncclResult_t report(ncclResult_t code, const char* fmt, ...) {
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "nccl-emu: %s\n", msg);
    fflush(stderr);
    return code;
}

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// TIPCAP_EMU_NCCL_TIMEOUT=seconds: how long a blocking call waits for the other ranks (default 300).
double timeout_s(void) {
    static const double seconds = [] {
        const char* v = getenv("TIPCAP_EMU_NCCL_TIMEOUT");
        if (!v || !*v) return 300.0;
        char* end;
        double s = strtod(v, &end);
        if (*end || !(s > 0)) emu_fatal("TIPCAP_EMU_NCCL_TIMEOUT=%s: give the seconds to wait, a positive number", v);
        return s;
    }();
    return seconds;
}

bool process_exited(int pid) { return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH; }

size_t type_size(int type) {
    switch (type) {
        case ncclInt8: case ncclUint8: return 1;
        case ncclBfloat16: return 2;
        case ncclInt32: case ncclUint32: case ncclFloat: return 4;
        case ncclInt64: case ncclUint64: case ncclDouble: return 8;
    }
    return 0;  // ncclFloat16 (no half type in the emulation) and values outside the enum
}

const char* type_name(int type) {
    static const char* names[] = {"ncclInt8", "ncclUint8", "ncclInt32", "ncclUint32", "ncclInt64",
                                  "ncclUint64", "ncclFloat16", "ncclFloat32", "ncclFloat64", "ncclBfloat16"};
    return type >= 0 && type < ncclNumTypes ? names[type] : "an unknown type";
}

const char* op_name(int op) {
    static const char* names[] = {"ncclSum", "ncclProd", "ncclMax", "ncclMin", "ncclAvg"};
    return op >= 0 && op < ncclNumOps ? names[op] : "an unknown operation";
}

std::string describe(const Call& c) {
    char s[160];
    if (c.kind == kAllReduce)
        snprintf(s, sizeof s, "ncclAllReduce(count %llu, %s, %s)", (unsigned long long)c.count, type_name(c.type),
                 op_name(c.op));
    else
        snprintf(s, sizeof s, "ncclBroadcast(count %llu, %s, root %d)", (unsigned long long)c.count, type_name(c.type),
                 c.root);
    return s;
}

bool same_call(const Call& a, const Call& b) {
    return a.number == b.number && a.kind == b.kind && a.type == b.type && a.count == b.count &&
           (a.kind == kAllReduce ? a.op == b.op : a.root == b.root);
}

// Element arithmetic in the type's own precision: bf16 is combined in fp32 and rounded after every
// step, as NCCL's bf16 reductions round each partial result.
template <typename T> struct Arith {
    using Wide = T;
    static Wide up(T v) { return v; }
    static T down(Wide v) { return (T)v; }
};
template <> struct Arith<__nv_bfloat16> {
    using Wide = float;
    static float up(__nv_bfloat16 v) { return __bfloat162float(v); }
    static __nv_bfloat16 down(float v) { return __float2bfloat16(v); }
};

// out[i] = staging[rank 0][i] op staging[rank 1][i] op ... in rank order (avg: the sum / nranks).
template <typename T>
void combine(void* out, const unsigned char* staging, size_t slot_bytes, int nranks, size_t n, int op) {
    using A = Arith<T>;
    using W = typename A::Wide;
    T* o = (T*)out;
    for (size_t i = 0; i < n; i++) {
        T acc = ((const T*)staging)[i];
        for (int k = 1; k < nranks; k++) {
            W a = A::up(acc), x = A::up(((const T*)(staging + (size_t)k * slot_bytes))[i]);
            W r = op == ncclProd ? (W)(a * x) : op == ncclMax ? (x > a ? x : a) : op == ncclMin ? (x < a ? x : a) : (W)(a + x);
            acc = A::down(r);
        }
        o[i] = op == ncclAvg ? A::down((W)(A::up(acc) / (W)nranks)) : acc;
    }
}

void combine_any(int type, void* out, const unsigned char* staging, size_t slot_bytes, int nranks, size_t n, int op) {
    switch (type) {
        case ncclInt8: combine<int8_t>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclUint8: combine<uint8_t>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclInt32: combine<int32_t>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclUint32: combine<uint32_t>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclInt64: combine<int64_t>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclUint64: combine<uint64_t>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclFloat: combine<float>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclDouble: combine<double>(out, staging, slot_bytes, nranks, n, op); break;
        case ncclBfloat16: combine<__nv_bfloat16>(out, staging, slot_bytes, nranks, n, op); break;
    }
}

}  // namespace

struct ncclComm {
    Segment* seg;
    std::string name;      // of the shared-memory segment
    int rank, nranks;
    bool formed;           // every rank has joined
    ncclResult_t error;    // a failed call leaves the communicator unusable, as in NCCL
    uint64_t phase;        // barriers this rank has passed
    uint64_t calls;        // collectives called
};

namespace {

// One look at the ranks this one waits for: joined and alive (`joining`), or at barrier `target`.
// Returns ncclSuccess when all are there, ncclInProgress while some are on their way (listed in
// `late`), or an error, reported, when one has left the communicator or exited.
ncclResult_t look_at_peers(ncclComm* c, bool joining, uint64_t target, const char* what, std::string* late) {
    if (joining && c->seg->formed.load(std::memory_order_acquire)) return ncclSuccess;
    for (int k = 0; k < c->nranks; k++) {
        Slot& s = c->seg->slots[k];
        int state = s.state.load(std::memory_order_acquire);
        bool there = joining ? state == kJoined && !process_exited(s.pid.load())
                             : s.phase.load(std::memory_order_acquire) >= target;
        if (there) continue;
        if (state == kLeft)
            return report(ncclRemoteError, "rank %d: %s: rank %d has left the communicator (ncclCommDestroy or "
                          "ncclCommAbort)", c->rank, what, k);
        if (process_exited(s.pid.load()))
            return report(ncclRemoteError, "rank %d: %s: rank %d (process %d) has exited", c->rank, what, k,
                          s.pid.load());
        if (!late->empty()) *late += ", ";
        *late += std::to_string(k);
    }
    if (!late->empty()) return ncclInProgress;
    if (joining) c->seg->formed.store(1, std::memory_order_release);
    return ncclSuccess;
}

ncclResult_t wait_for_peers(ncclComm* c, bool joining, uint64_t target, const char* what) {
    double deadline = now_s() + timeout_s();
    for (useconds_t nap = 20;; nap = nap < 1000 ? 2 * nap : 1000) {
        std::string late;
        ncclResult_t r = look_at_peers(c, joining, target, what, &late);
        if (r != ncclInProgress) return r;
        if (now_s() > deadline)
            return report(ncclRemoteError, "rank %d: %s: rank(s) %s of %d did not arrive within %g s "
                          "(TIPCAP_EMU_NCCL_TIMEOUT)", c->rank, what, late.c_str(), c->nranks, timeout_s());
        usleep(nap);
    }
}

ncclResult_t barrier(ncclComm* c, const char* what) {
    c->phase++;
    c->seg->slots[c->rank].phase.store(c->phase, std::memory_order_release);
    return wait_for_peers(c, false, c->phase, what);
}

void release_name(ncclComm* c) {
    if (!c->name.empty()) shm_unlink(c->name.c_str());
    c->name.clear();
}

// Every rank has joined: NCCL's checks at the end of its init. The name can go: every rank has the
// segment mapped.
ncclResult_t formed(ncclComm* c) {
    c->formed = true;
    release_name(c);
    for (int i = 0; i < c->nranks; i++)
        for (int j = i + 1; j < c->nranks; j++)
            if (c->seg->slots[i].device == c->seg->slots[j].device)
                return c->error = report(ncclInvalidUsage, "rank %d: Duplicate GPU detected: rank %d and rank %d both "
                                         "on CUDA device %d", c->rank, i, j, c->seg->slots[i].device);
    return ncclSuccess;
}

ncclResult_t init(ncclComm_t* out, int nranks, const ncclUniqueId& id, int rank, bool blocking) {
    if (!out) return report(ncclInvalidArgument, "rank %d: ncclCommInitRank: comm is NULL", rank);
    IdContents contents;
    memcpy(&contents, id.internal, sizeof contents);
    if (memcmp(contents.mark, kIdMark, sizeof kIdMark))
        return report(ncclInvalidArgument, "rank %d: ncclCommInitRank: the unique id was not made by ncclGetUniqueId",
                      rank);
    if (nranks < 1 || nranks > kMaxRanks)
        return report(ncclInvalidArgument, "rank %d: ncclCommInitRank: nranks %d (the emulation takes 1 to %d)", rank,
                      nranks, kMaxRanks);
    if (rank < 0 || rank >= nranks)
        return report(ncclInvalidArgument, "ncclCommInitRank: rank %d of nranks %d", rank, nranks);
    int device;
    if (cudaError_t err = cudaGetDevice(&device)) {
        cudaGetLastError();
        return report(ncclUnhandledCudaError, "rank %d: ncclCommInitRank: no current device (cudaGetDevice: %s)", rank,
                      cudaGetErrorString(err));
    }
    std::string name = "/tipcap-emu-nccl-";
    for (unsigned char b : contents.nonce) {
        char hex[3];
        snprintf(hex, sizeof hex, "%02x", b);
        name += hex;
    }
    int fd = shm_open(name.c_str(), O_RDWR | O_CREAT, 0600);
    if (fd < 0) return report(ncclSystemError, "rank %d: shm_open(%s): %s", rank, name.c_str(), strerror(errno));
    void* map = ftruncate(fd, sizeof(Segment)) == 0
                    ? mmap(NULL, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
    int saved_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return report(ncclSystemError, "rank %d: mapping %zu bytes of shared memory %s: %s", rank, sizeof(Segment),
                      name.c_str(), strerror(saved_errno));
    Segment* seg = (Segment*)map;
    int first = 0;
    if (!seg->nranks.compare_exchange_strong(first, nranks) && first != nranks) {
        munmap(map, sizeof(Segment));
        return report(ncclInvalidUsage, "rank %d: ncclCommInitRank with nranks %d, but another rank gave %d for the "
                      "same id", rank, nranks, first);
    }
    Slot& mine = seg->slots[rank];
    int holder = 0;
    if (!mine.pid.compare_exchange_strong(holder, (int)getpid())) {
        munmap(map, sizeof(Segment));
        if (process_exited(holder))
            return report(ncclInvalidUsage, "rank %d: ncclCommInitRank: rank %d of this id was taken by process %d, "
                          "which has exited: the id belongs to an earlier run", rank, rank, holder);
        return report(ncclInvalidUsage, "rank %d: ncclCommInitRank: process %d has joined as rank %d already: two "
                      "processes were given the same rank", rank, holder, rank);
    }
    mine.device = device;
    mine.state.store(kJoined, std::memory_order_release);
    ncclComm* c = new ncclComm{seg, name, rank, nranks, false, ncclSuccess, 0, 0};
    *out = c;
    if (!blocking) return ncclInProgress;
    ncclResult_t r = wait_for_peers(c, true, 0, "ncclCommInitRank");
    return r == ncclSuccess ? formed(c) : (c->error = r);
}

// Every collective: the communicator is usable, the call is the same on every rank.
ncclResult_t begin(ncclComm* c, Call* call, const char* fn, char* what, size_t what_cap) {
    if (c->error != ncclSuccess)
        return report(c->error, "rank %d: %s on a communicator that failed before", c->rank, fn);
    if (!c->formed)
        return report(ncclInvalidUsage, "rank %d: %s before the communicator has formed (ncclCommGetAsyncError "
                      "returns ncclInProgress until it has)", c->rank, fn);
    call->number = ++c->calls;
    snprintf(what, what_cap, "%s (call #%llu)", fn, (unsigned long long)call->number);
    Slot* slots = c->seg->slots;
    slots[c->rank].call = *call;
    if (ncclResult_t r = barrier(c, what)) return c->error = r;
    for (int k = 0; k < c->nranks; k++)
        if (!same_call(slots[k].call, *call))
            return c->error = report(ncclInvalidUsage, "rank %d: mismatched collectives at call #%llu: rank %d calls "
                                     "%s, rank %d calls %s", c->rank, (unsigned long long)call->number, c->rank,
                                     describe(*call).c_str(), k, describe(slots[k].call).c_str());
    return ncclSuccess;
}

ncclResult_t check_buffer(const ncclComm* c, const char* fn, const char* role, const void* ptr, size_t bytes) {
    size_t alloc_bytes, offset;
    if (bytes == 0 || emu_device_range(ptr, bytes, &alloc_bytes, &offset) == 1) return ncclSuccess;
    return report(ncclInvalidArgument, "rank %d: %s: %s %p is not %zu bytes of device memory (cudaMalloc)", c->rank,
                  fn, role, ptr, bytes);
}

// The data of an all-reduce or a broadcast, in chunks of the staging area.
ncclResult_t move_data(ncclComm* c, const Call& call, const void* send, void* recv, const char* what) {
    size_t elem = type_size(call.type);
    size_t slot_bytes = kStagingBytes / (size_t)c->nranks / 64 * 64;
    size_t chunk = slot_bytes / elem;
    unsigned char* staging = c->seg->staging;
    size_t done = 0;
    do {  // at least one round, so that no rank posts its next call while another still compares this one
        size_t n = call.count - done < chunk ? call.count - done : chunk;
        if (call.kind == kAllReduce || c->rank == call.root)
            memcpy(staging + (size_t)c->rank * slot_bytes, (const unsigned char*)send + done * elem, n * elem);
        if (ncclResult_t r = barrier(c, what)) return c->error = r;
        unsigned char* dst = (unsigned char*)recv + done * elem;
        if (call.kind == kAllReduce) combine_any(call.type, dst, staging, slot_bytes, c->nranks, n, call.op);
        else memcpy(dst, staging + (size_t)call.root * slot_bytes, n * elem);
        if (ncclResult_t r = barrier(c, what)) return c->error = r;
        done += n;
    } while (done < call.count);
    return ncclSuccess;
}

void leave(ncclComm* c) {
    c->seg->slots[c->rank].state.store(kLeft, std::memory_order_release);
    release_name(c);
    munmap(c->seg, sizeof(Segment));
    delete c;
}

}  // namespace

extern "C" {

const char* ncclGetErrorString(ncclResult_t result) {
    switch (result) {
        case ncclSuccess: return "no error";
        case ncclUnhandledCudaError: return "unhandled cuda error (the nccl-emu: line before says which)";
        case ncclSystemError: return "unhandled system error (the nccl-emu: line before says which)";
        case ncclInternalError: return "internal error";
        case ncclInvalidArgument: return "invalid argument (the nccl-emu: line before says which)";
        case ncclInvalidUsage: return "invalid usage (the nccl-emu: line before says what)";
        case ncclRemoteError: return "remote process exited or there was a network error (the nccl-emu: line before says which)";
        case ncclInProgress: return "NCCL operation in progress";
        default: return "unknown result code";
    }
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId) {
    if (!uniqueId) return report(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
    IdContents contents;
    memcpy(contents.mark, kIdMark, sizeof kIdMark);
    if (getrandom(contents.nonce, sizeof contents.nonce, 0) != (ssize_t)sizeof contents.nonce)
        return report(ncclSystemError, "ncclGetUniqueId: getrandom: %s", strerror(errno));
    memset(uniqueId, 0, sizeof *uniqueId);
    memcpy(uniqueId->internal, &contents, sizeof contents);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank) {
    return init(comm, nranks, commId, rank, true);
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank, ncclConfig_t* config) {
    if (config && (config->size != sizeof(ncclConfig_t) || config->magic != 0xcafebeef))
        return report(ncclInvalidArgument, "rank %d: ncclCommInitRankConfig: the config was not set up with "
                      "NCCL_CONFIG_INITIALIZER", rank);
    bool blocking = !config || config->blocking == NCCL_CONFIG_UNDEF_INT || config->blocking != 0;
    return init(comm, nranks, commId, rank, blocking);
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError) {
    if (!comm || !asyncError) return report(ncclInvalidArgument, "ncclCommGetAsyncError: comm or asyncError is NULL");
    if (!comm->formed && comm->error == ncclSuccess) {
        std::string late;
        ncclResult_t r = look_at_peers(comm, true, 0, "ncclCommInitRankConfig", &late);
        if (r == ncclSuccess) r = formed(comm);
        else if (r != ncclInProgress) comm->error = r;
        *asyncError = r;
        return ncclSuccess;
    }
    *asyncError = comm->error;
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (comm) leave(comm);
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return report(ncclInvalidArgument, "ncclCommDestroy: comm is NULL");
    leave(comm);
    return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    const char* fn = "ncclAllReduce";
    if (!comm) return report(ncclInvalidArgument, "%s: comm is NULL", fn);
    if (!type_size(datatype))
        return report(ncclInvalidArgument, "rank %d: %s: %s is not emulated", comm->rank, fn, type_name(datatype));
    if (op < 0 || op >= ncclNumOps) return report(ncclInvalidArgument, "rank %d: %s: operation %d", comm->rank, fn, op);
    size_t bytes = count * type_size(datatype);
    if (ncclResult_t r = check_buffer(comm, fn, "sendbuff", sendbuff, bytes)) return r;
    if (ncclResult_t r = check_buffer(comm, fn, "recvbuff", recvbuff, bytes)) return r;
    Call call = {0, kAllReduce, datatype, op, -1, count};
    char what[96];
    if (ncclResult_t r = begin(comm, &call, fn, what, sizeof what)) return r;
    return move_data(comm, call, sendbuff, recvbuff, what);
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
    const char* fn = "ncclBroadcast";
    if (!comm) return report(ncclInvalidArgument, "%s: comm is NULL", fn);
    if (!type_size(datatype))
        return report(ncclInvalidArgument, "rank %d: %s: %s is not emulated", comm->rank, fn, type_name(datatype));
    if (root < 0 || root >= comm->nranks)
        return report(ncclInvalidArgument, "rank %d: %s: root %d of %d ranks", comm->rank, fn, root, comm->nranks);
    size_t bytes = count * type_size(datatype);
    if (comm->rank == root)  // NCCL reads sendbuff on the root only
        if (ncclResult_t r = check_buffer(comm, fn, "sendbuff", sendbuff, bytes)) return r;
    if (ncclResult_t r = check_buffer(comm, fn, "recvbuff", recvbuff, bytes)) return r;
    Call call = {0, kBroadcast, datatype, ncclSum, root, count};
    char what[96];
    if (ncclResult_t r = begin(comm, &call, fn, what, sizeof what)) return r;
    return move_data(comm, call, sendbuff, recvbuff, what);
}

}  // extern "C"
