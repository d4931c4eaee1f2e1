// Device profiles: the limits of each architecture a build of tipcap can run on. Every launch and
// every cudaFuncSetAttribute is checked against each profile in use, as that device's runtime would
// check it, and cudaGetDeviceProperties / cudaDeviceGetAttribute describe the profile.
// TIPCAP_EMU_DEVICE=sm_86 (or emu_set_device) uses one; the default, "all", uses every architecture
// the build runs on: SASS of GPU_ARCH runs within its major version from its minor up, the PTX on
// every later architecture. Registers and static shared memory come from ptxas's report
// (emu_build_targets), keyed by the kernel's mangled name.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/emu/emu_internal.h"

namespace {

// The per-compute-capability limits of the CUDA C++ Programming Guide ("Technical Specifications
// per Compute Capability"); the SM count is the first example device's. Limits common to all of them:
// 1024 threads per block (1024 x 1024 x 64), grids of 2^31-1 x 65535 x 65535, 48 KiB of shared
// memory per block without opt-in, 65536 registers per block and per SM, 255 per thread.
struct Profile {
    const char* name;
    int arch;  // 86 for compute capability 8.6
    const char* devices;
    int sms;
    size_t shared_per_sm;
    size_t shared_per_block_optin;  // cudaFuncAttributeMaxDynamicSharedMemorySize + static, at most
    int threads_per_sm;
    int blocks_per_sm;
};
// Also each profile (shared memory, threads per SM) of: sm_87 = sm_80; sm_103, sm_110 = sm_100; sm_121 = sm_120.
constexpr Profile kProfiles[] = {
    {"sm_80", 80, "A100", 108, 164 * 1024, 163 * 1024, 2048, 32},
    {"sm_86", 86, "A10, A40, RTX 30", 72, 100 * 1024, 99 * 1024, 1536, 16},
    {"sm_89", 89, "L4, L40, RTX 40", 58, 100 * 1024, 99 * 1024, 1536, 24},
    {"sm_90", 90, "H100, H200", 132, 228 * 1024, 227 * 1024, 2048, 32},
    {"sm_100", 100, "B200", 148, 228 * 1024, 227 * 1024, 2048, 32},
    {"sm_120", 120, "RTX 50, RTX PRO 6000", 170, 100 * 1024, 99 * 1024, 1536, 32},
};
constexpr size_t kSharedPerBlock = 48 * 1024;
constexpr int kRegistersPerBlock = 65536;
constexpr int kRegisterAllocationUnit = 256;  // registers are allocated per warp in units of 256
constexpr int kSubPartitions = 4;             // the launch check rounds a block's warps up to the 4 SM sub-partitions

// The architecture whose code runs on the profile: the newest SASS of its major version not newer
// than it, else the PTX compiled for the profile itself; 0 when the build has no image for it.
int code_arch(const Profile& p) {
    const EmuBuildTargets& t = emu_build_targets;
    int best = 0;
    for (int i = 0; i < t.n_sass_archs; i++)
        if (t.sass_archs[i] / 10 == p.arch / 10 && t.sass_archs[i] <= p.arch && t.sass_archs[i] > best)
            best = t.sass_archs[i];
    if (best) return best;
    return p.arch >= t.ptx_arch ? p.arch : 0;
}

std::string build_images() {
    const EmuBuildTargets& t = emu_build_targets;
    std::string s = "SASS for";
    for (int i = 0; i < t.n_sass_archs; i++) s += " sm_" + std::to_string(t.sass_archs[i]);
    return s + ", PTX for compute_" + std::to_string(t.ptx_arch);
}

struct Kernel {
    std::string mangled;  // "" when the symbol table does not name it
    std::string name;     // for messages
    int max_dynamic_shared = -1;  // cudaFuncAttributeMaxDynamicSharedMemorySize, -1: not set
};

std::mutex state_lock;
std::vector<const Profile*> in_use;  // the profiles checked, in table order
std::string in_use_names;
bool selected = false;
std::map<const void*, Kernel> kernels;
std::unordered_map<std::string, std::vector<const EmuKernelResources*>> resources;

const Profile* find_profile(const char* name) {
    for (const Profile& p : kProfiles)
        if (!strcmp(p.name, name)) return &p;
    return nullptr;
}

// Under state_lock.
bool select_profile(const char* name) {
    std::vector<const Profile*> use;
    if (!strcmp(name, "all")) {
        for (const Profile& p : kProfiles)
            if (code_arch(p)) use.push_back(&p);
    } else if (const Profile* p = find_profile(name)) {
        use.push_back(p);
    } else {
        return false;
    }
    in_use = use;
    in_use_names.clear();
    for (const Profile* p : use) in_use_names += (in_use_names.empty() ? "" : " ") + std::string(p->name);
    selected = true;
    return true;
}

void ensure_selected() {
    if (selected) return;
    const char* env = getenv("TIPCAP_EMU_DEVICE");
    if (!select_profile(env && *env ? env : "all")) {
        std::string names = "all";
        for (const Profile& p : kProfiles) names += std::string(", ") + p.name;
        emu_fatal("TIPCAP_EMU_DEVICE=%s: not a device profile (%s)", env, names.c_str());
    }
    for (size_t i = 0; i < emu_build_targets.n_kernels; i++)
        resources[emu_build_targets.kernels[i].mangled_name].push_back(&emu_build_targets.kernels[i]);
    if (!emu_build_targets.have_ptxas)
        fprintf(stderr, "cuda-emu: this build had no nvcc, so no ptxas report: launches are not checked against "
                "the registers per block, and static shared memory counts as 0\n");
}

// Under state_lock.
Kernel& kernel_of(const void* kernel, const char* text) {
    auto it = kernels.find(kernel);
    if (it != kernels.end()) return it->second;
    Kernel& k = kernels[kernel];
    k.mangled = emu_symbol_name(kernel);
    k.name = !k.mangled.empty() ? emu_demangled_kernel_name(k.mangled) : text ? text : "(a kernel without a symbol)";
    return k;
}

const EmuKernelResources* find_resources(const Kernel& k, int arch) {
    auto it = resources.find(k.mangled);
    if (it != resources.end())
        for (const EmuKernelResources* r : it->second)
            if (r->arch == arch) return r;
    return nullptr;
}

// ptxas's report of the kernel for `arch`; null when the build has none (no nvcc, or a kernel that
// nvcc never compiles). A kernel that should have one and has not is a broken build: reported.
const EmuKernelResources* resources_of(const Kernel& k, int arch, bool has_ptxas_report) {
    if (!emu_build_targets.have_ptxas || !has_ptxas_report) return nullptr;
    if (k.mangled.empty())
        emu_fatal("kernel '%s': its address has no name in the symbol table (a stripped program?), so its ptxas "
                  "report cannot be found", k.name.c_str());
    if (const EmuKernelResources* r = find_resources(k, arch)) return r;
    emu_fatal("kernel '%s' (%s): no ptxas report for sm_%d in build/gen/emu_cuda_resources.cpp (its source is not "
              "in the Makefile's CUDA_PTXAS_LOGS, or nvcc mangled its name differently)",
              k.name.c_str(), k.mangled.c_str(), arch);
}

cudaError_t refuse(const Kernel& k, const Profile& p, cudaError_t err, const char* what) {
    fprintf(stderr, "cuda-emu: kernel '%s' refused on %s (%s): %s: %s\n", k.name.c_str(), p.name, p.devices, what,
            cudaGetErrorName(err));
    return err;
}

// Checks every profile in use with `check` (which prints each refusal), so that a refusal names all
// the devices that refuse; returns the first refusal's error, set as the last error.
template <typename Check>
cudaError_t check_profiles(const Check& check) {
    cudaError_t first = cudaSuccess;
    for (const Profile* p : in_use) {
        const cudaError_t err = check(*p);
        if (first == cudaSuccess) first = err;
    }
    return first == cudaSuccess ? cudaSuccess : emu_set_error(first);
}

std::string kib(size_t bytes) {
    char buf[48];
    snprintf(buf, sizeof buf, bytes % 1024 ? "%zu bytes" : "%zu bytes (%zu KiB)", bytes, bytes / 1024);
    return buf;
}

}  // namespace

size_t emu_largest_shared_optin(void) {
    size_t most = 0;
    for (const Profile& p : kProfiles) most = p.shared_per_block_optin > most ? p.shared_per_block_optin : most;
    return most;
}

int emu_set_device(const char* profile) {
    std::lock_guard<std::mutex> guard(state_lock);
    ensure_selected();
    return select_profile(profile) ? 0 : -1;
}

const char* emu_device_profiles(void) {
    std::lock_guard<std::mutex> guard(state_lock);
    ensure_selected();
    static std::string all;
    all.clear();
    for (const Profile& p : kProfiles)
        if (code_arch(p)) all += (all.empty() ? "" : " ") + std::string(p.name);
    return all.c_str();
}

int emu_kernel_registers(const void* kernel, const char* profile) {
    std::lock_guard<std::mutex> guard(state_lock);
    ensure_selected();
    const Profile* p = find_profile(profile);
    const EmuKernelResources* r = p ? find_resources(kernel_of(kernel, nullptr), code_arch(*p)) : nullptr;
    return r ? r->registers : -1;
}

cudaError_t emu_check_launch(const char* text, const void* kernel, bool has_ptxas_report, dim3 grid, dim3 block,
                             size_t dynamic_shared_bytes) {
    std::lock_guard<std::mutex> guard(state_lock);
    ensure_selected();
    Kernel& k = kernel_of(kernel, text);
    const uint64_t threads = (uint64_t)block.x * block.y * block.z;
    return check_profiles([&](const Profile& p) {
        char what[512];
        const int arch = code_arch(p);
        if (!arch) {
            snprintf(what, sizeof what, "the build has no code for it (%s)", build_images().c_str());
            return refuse(k, p, cudaErrorNoKernelImageForDevice, what);
        }
        if (threads == 0 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64) {
            snprintf(what, sizeof what, "block (%u,%u,%u): at most 1024 threads, 1024 x 1024 x 64", block.x, block.y,
                     block.z);
            return refuse(k, p, cudaErrorInvalidConfiguration, what);
        }
        if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535) {
            snprintf(what, sizeof what, "grid (%u,%u,%u): 1 to 2147483647 x 65535 x 65535 blocks", grid.x, grid.y,
                     grid.z);
            return refuse(k, p, cudaErrorInvalidConfiguration, what);
        }
        const EmuKernelResources* r = resources_of(k, arch, has_ptxas_report);
        const size_t static_shared = r ? (size_t)r->static_shared_bytes : 0;
        if (k.max_dynamic_shared < 0 && static_shared + dynamic_shared_bytes > kSharedPerBlock) {
            snprintf(what, sizeof what,
                     "%zu bytes of dynamic and %zu of static shared memory exceed the %s a block may use without "
                     "opting in (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, ...))",
                     dynamic_shared_bytes, static_shared, kib(kSharedPerBlock).c_str());
            return refuse(k, p, cudaErrorInvalidValue, what);
        }
        if (k.max_dynamic_shared >= 0 && dynamic_shared_bytes > (size_t)k.max_dynamic_shared) {
            snprintf(what, sizeof what,
                     "%zu bytes of dynamic shared memory exceed the kernel's "
                     "cudaFuncAttributeMaxDynamicSharedMemorySize of %d", dynamic_shared_bytes, k.max_dynamic_shared);
            return refuse(k, p, cudaErrorInvalidValue, what);
        }
        if (r) {
            const int warps = (int)((threads + 31) / 32);
            const int per_warp = (r->registers * 32 + kRegisterAllocationUnit - 1) / kRegisterAllocationUnit *
                                 kRegisterAllocationUnit;
            const int per_block = per_warp * ((warps + kSubPartitions - 1) / kSubPartitions * kSubPartitions);
            if (per_block > kRegistersPerBlock) {
                snprintf(what, sizeof what,
                         "%d registers per thread (ptxas, sm_%d) for %llu threads take %d registers per block "
                         "(%d per warp, %d warps counted as %d), more than the %d of a block",
                         r->registers, arch, (unsigned long long)threads, per_block, per_warp, warps,
                         (warps + kSubPartitions - 1) / kSubPartitions * kSubPartitions, kRegistersPerBlock);
                return refuse(k, p, cudaErrorLaunchOutOfResources, what);
            }
        }
        return cudaSuccess;
    });
}

cudaError_t cudaFuncSetAttribute(const void* kernel, cudaFuncAttribute attr, int value) {
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout)
        return value >= -1 && value <= 100 ? cudaSuccess : emu_set_error(cudaErrorInvalidValue);
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0) return emu_set_error(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> guard(state_lock);
    ensure_selected();
    Kernel& k = kernel_of(kernel, nullptr);
    const cudaError_t err = check_profiles([&](const Profile& p) {
        char what[512];
        const int arch = code_arch(p);
        if (!arch) {
            snprintf(what, sizeof what, "the build has no code for it (%s)", build_images().c_str());
            return refuse(k, p, cudaErrorNoKernelImageForDevice, what);
        }
        const EmuKernelResources* r = resources_of(k, arch, true);
        const size_t static_shared = r ? (size_t)r->static_shared_bytes : 0;
        if (static_shared + (size_t)value > p.shared_per_block_optin) {
            snprintf(what, sizeof what,
                     "cudaFuncAttributeMaxDynamicSharedMemorySize %d plus %zu bytes of static shared memory exceed "
                     "the %s a block may use there (cudaDevAttrMaxSharedMemoryPerBlockOptin)",
                     value, static_shared, kib(p.shared_per_block_optin).c_str());
            return refuse(k, p, cudaErrorInvalidValue, what);
        }
        return cudaSuccess;
    });
    if (err == cudaSuccess) k.max_dynamic_shared = value;
    return err;
}

// One profile, or for "all" the most restrictive value of each limit over the profiles in use.
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (!prop) return emu_set_error(cudaErrorInvalidValue);
    if (cudaError_t err = emu_check_device(device)) return err;
    std::vector<const Profile*> use;
    std::string names;
    {
        std::lock_guard<std::mutex> guard(state_lock);
        ensure_selected();
        use = in_use;
        names = in_use_names;
    }
    memset(prop, 0, sizeof *prop);
    const Profile& first = *use.front();
    if (use.size() == 1)
        snprintf(prop->name, sizeof prop->name, "CUDA emulation on the CPU: %s (%s)", first.name, first.devices);
    else
        snprintf(prop->name, sizeof prop->name, "CUDA emulation on the CPU: the most restrictive of %s", names.c_str());
    prop->major = first.arch / 10;
    prop->minor = first.arch % 10;
    prop->multiProcessorCount = first.sms;
    prop->sharedMemPerMultiprocessor = first.shared_per_sm;
    prop->sharedMemPerBlockOptin = first.shared_per_block_optin;
    prop->maxThreadsPerMultiProcessor = first.threads_per_sm;
    prop->maxBlocksPerMultiProcessor = first.blocks_per_sm;
    for (const Profile* p : use) {
        prop->multiProcessorCount = std::min(prop->multiProcessorCount, p->sms);
        prop->sharedMemPerMultiprocessor = std::min(prop->sharedMemPerMultiprocessor, p->shared_per_sm);
        prop->sharedMemPerBlockOptin = std::min(prop->sharedMemPerBlockOptin, p->shared_per_block_optin);
        prop->maxThreadsPerMultiProcessor = std::min(prop->maxThreadsPerMultiProcessor, p->threads_per_sm);
        prop->maxBlocksPerMultiProcessor = std::min(prop->maxBlocksPerMultiProcessor, p->blocks_per_sm);
    }
    size_t free_bytes = 0;
    cudaMemGetInfo(&free_bytes, &prop->totalGlobalMem);
    prop->sharedMemPerBlock = kSharedPerBlock;
    prop->reservedSharedMemPerBlock = 1024;
    prop->regsPerBlock = kRegistersPerBlock;
    prop->regsPerMultiprocessor = kRegistersPerBlock;
    prop->warpSize = 32;
    prop->memPitch = (size_t)2147483647;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = 1024;
    prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = 65535;
    prop->maxGridSize[2] = 65535;
    prop->totalConstMem = 65536;
    prop->textureAlignment = 512;
    prop->canMapHostMemory = 1;
    prop->concurrentKernels = 1;
    prop->unifiedAddressing = 1;
    prop->managedMemory = 1;
    prop->cooperativeLaunch = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    if (!value) return emu_set_error(cudaErrorInvalidValue);
    if (cudaError_t err = emu_check_device(device)) return err;
    cudaDeviceProp p;
    cudaGetDeviceProperties(&p, device);
    switch (attr) {
        case cudaDevAttrMaxThreadsPerBlock: *value = p.maxThreadsPerBlock; break;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)p.sharedMemPerBlock; break;
        case cudaDevAttrWarpSize: *value = p.warpSize; break;
        case cudaDevAttrMultiProcessorCount: *value = p.multiProcessorCount; break;
        case cudaDevAttrComputeCapabilityMajor: *value = p.major; break;
        case cudaDevAttrComputeCapabilityMinor: *value = p.minor; break;
        case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *value = (int)p.sharedMemPerMultiprocessor; break;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)p.sharedMemPerBlockOptin; break;
        default: return emu_set_error(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}
