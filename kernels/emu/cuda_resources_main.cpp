// build/emu/cuda-resources: writes to stdout the resources of every tipcap kernel instantiation on
// every architecture the build runs on (`make check-cuda` keeps it as build/cuda-resources.tsv):
//   kernel  arch  registers  spill_bytes  shared_bytes
// registers and spills (stores + loads) from ptxas's report (emu_build_targets); shared_bytes the
// static shared memory plus the most dynamic shared memory the kernel's DYNAMIC_SHARED declares
// (the largest its launchers may request: the emulation checks every launch against it). Linked
// with the whole emulation library so that every kernel and its declaration are in this program.
// Exits 1, naming them on stderr, when a kernel spills registers to local memory.
#include <stdio.h>

#include <string>

#include "kernels/emu/emu_internal.h"

// The declaration of DYNAMIC_SHARED (kernels/cuda_common.cuh): the static local
// `emu_dynamic_shared_max` of the kernel, mangled _ZZ<kernel's encoding>E22emu_dynamic_shared_max.
static size_t declared_dynamic_shared(const std::string& mangled) {
    const std::string object = "_ZZ" + mangled.substr(2) + "E22emu_dynamic_shared_max";
    const size_t* max = (const size_t*)emu_symbol_address((const void*)&declared_dynamic_shared, object);
    return max ? *max : 0;
}

int main(void) {
    const EmuBuildTargets& t = emu_build_targets;
    if (!t.have_ptxas) {
        fprintf(stderr, "error: cuda-resources: this build had no nvcc, so no ptxas report\n");
        return 1;
    }
    int spills = 0;
    printf("kernel\tarch\tregisters\tspill_bytes\tshared_bytes\n");
    for (size_t i = 0; i < t.n_kernels; i++) {
        const EmuKernelResources& k = t.kernels[i];
        if (std::string(k.source).compare(0, 6, "tests/") == 0) continue;  // the emulation's own test kernels
        const std::string name = emu_demangled_kernel_name(k.mangled_name);
        const int spill = k.spill_store_bytes + k.spill_load_bytes;
        printf("%s\tsm_%d\t%d\t%d\t%zu\n", name.c_str(), k.arch, k.registers, spill,
               (size_t)k.static_shared_bytes + declared_dynamic_shared(k.mangled_name));
        if (spill) {
            fprintf(stderr, "error: %s: kernel '%s' spills on sm_%d: %d bytes stored, %d loaded (ptxas)\n", k.source,
                    name.c_str(), k.arch, k.spill_store_bytes, k.spill_load_bytes);
            spills++;
        }
    }
    return spills ? 1 : 0;
}
