// Names of emulated kernels: the mangled name of a function from the ELF symbol table of the module
// that holds it. g++ mangles a kernel as nvcc does (Itanium ABI), so the name keys ptxas's report of
// that kernel (emu_cuda_resources), template instantiations included.
#include <cxxabi.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <string>

#include "kernels/emu/emu_internal.h"

namespace {

struct Module {
    std::map<uintptr_t, std::string> functions;  // run-time address -> mangled name
    std::map<std::string, uintptr_t> objects;    // mangled name -> run-time address
};

struct ModuleSearch {
    uintptr_t address;
    std::string path;
    uintptr_t bias;
    bool found;
};

int find_module(struct dl_phdr_info* info, size_t, void* data) {
    ModuleSearch* s = (ModuleSearch*)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph.p_vaddr;
        if (ph.p_type == PT_LOAD && s->address >= start && s->address < start + ph.p_memsz) {
            s->path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : "/proc/self/exe";
            s->bias = info->dlpi_addr;
            s->found = true;
            return 1;
        }
    }
    return 0;
}

// The functions and objects of the .symtab of the file at `path` (none if it was stripped).
void read_symbols(const std::string& path, uintptr_t bias, Module* m) {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    void* map = fstat(fd, &st) == 0 ? mmap(nullptr, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED) return;
    const unsigned char* file = (const unsigned char*)map;
    const ElfW(Ehdr)* eh = (const ElfW(Ehdr)*)file;
    if ((size_t)st.st_size >= sizeof *eh && !memcmp(eh->e_ident, ELFMAG, SELFMAG) && eh->e_shoff) {
        const ElfW(Shdr)* sections = (const ElfW(Shdr)*)(file + eh->e_shoff);
        for (int i = 0; i < eh->e_shnum; i++) {
            if (sections[i].sh_type != SHT_SYMTAB) continue;
            const ElfW(Sym)* syms = (const ElfW(Sym)*)(file + sections[i].sh_offset);
            const char* strings = (const char*)(file + sections[sections[i].sh_link].sh_offset);
            size_t n = sections[i].sh_size / sizeof(ElfW(Sym));
            for (size_t k = 0; k < n; k++) {
                int type = ELF64_ST_TYPE(syms[k].st_info);
                if (!syms[k].st_value || syms[k].st_shndx == SHN_UNDEF || !strings[syms[k].st_name]) continue;
                if (type == STT_FUNC) m->functions.emplace(bias + syms[k].st_value, strings + syms[k].st_name);
                if (type == STT_OBJECT) m->objects.emplace(strings + syms[k].st_name, bias + syms[k].st_value);
            }
        }
    }
    munmap(map, (size_t)st.st_size);
}

std::mutex modules_lock;
std::map<std::string, Module> modules;  // by file

Module& module_of(const void* address) {
    ModuleSearch s{(uintptr_t)address, "", 0, false};
    dl_iterate_phdr(find_module, &s);
    auto it = modules.find(s.path);
    if (it != modules.end()) return it->second;
    Module& m = modules[s.path];
    if (s.found) read_symbols(s.path, s.bias, &m);
    return m;
}

}  // namespace

std::string emu_symbol_name(const void* function) {
    std::lock_guard<std::mutex> guard(modules_lock);
    Module& m = module_of(function);
    auto it = m.functions.find((uintptr_t)function);
    return it == m.functions.end() ? std::string() : it->second;
}

const void* emu_symbol_address(const void* same_module, const std::string& mangled_object) {
    std::lock_guard<std::mutex> guard(modules_lock);
    Module& m = module_of(same_module);
    auto it = m.objects.find(mangled_object);
    return it == m.objects.end() ? nullptr : (const void*)it->second;
}

std::string emu_demangled_kernel_name(const std::string& mangled) {
    int status = 0;
    char* text = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
    if (status != 0 || !text) return mangled;
    std::string name = text;
    free(text);
    if (!name.compare(0, 5, "void ")) name.erase(0, 5);  // a template's return type: kernels return void
    // drop the parameter list: the '(' that closes the name at template depth 0
    int depth = 0;
    for (size_t i = 0; i < name.size(); i++) {
        if (name[i] == '<') depth++;
        else if (name[i] == '>') depth--;
        else if (name[i] == '(' && depth == 0) return name.substr(0, i);
    }
    return name;
}
