# tipcap build. `make` builds the CPU programs (and the CUDA backend when nvcc is found);
# `make test` runs every test that needs no GPU; `make demo` runs the main job.
# Each folder adds its sources in its module.mk; this file holds the probes and the rules.
.DEFAULT_GOAL := all
SHELL := /bin/bash
.SUFFIXES:

PREFIX ?= /usr/local
BUILD := build
BIN := bin
CC := gcc
CXX := g++
WERROR ?= 0
GPU_ARCH ?= 80 90
# The newest of GPU_ARCH: its PTX goes beside the SASS, and the driver compiles it for a device that no
# SASS runs on (SASS runs only within its major version: compute_90 PTX serves 10.x and 12.x)
GPU_PTX_ARCH := $(lastword $(shell printf '%s\n' $(GPU_ARCH) | sort -n))
comma := ,
# V=1 prints every command
Q := $(if $(filter 1,$(V)),,@)

# ---------------------------------------------------------------- probes
# DEPS_PREFIX=DIR: HDF5, cJSON, OpenBLAS, LAPACKE, libstemmer and the cudnn-frontend headers from
# DIR (an unpacked `make gpu-bundle`, docs/BUILD.md), read with its own pkg-config and found at
# run time through the programs' rpath.
DEPS := $(if $(DEPS_PREFIX),$(abspath $(DEPS_PREFIX)))
PKG_CONFIG := $(if $(DEPS),PKG_CONFIG_PATH=$(DEPS)/lib/pkgconfig $(DEPS)/bin/pkg-config,pkg-config)
DEPS_CFLAGS := $(if $(DEPS),-isystem $(DEPS)/include)
DEPS_LDFLAGS := $(if $(DEPS),-L$(DEPS)/lib -Wl$(comma)-rpath$(comma)$(DEPS)/lib)
pkg_found = $(shell $(PKG_CONFIG) --exists $(1) 2>/dev/null && echo yes)
deb_hdf5 := libhdf5-dev
deb_libcjson := libcjson-dev
deb_openblas := libopenblas-dev
deb_lapacke := liblapacke-dev
HOST_PKGS := hdf5 libcjson openblas lapacke
MISSING_DEBS := $(foreach p,$(HOST_PKGS),$(if $(call pkg_found,$(p)),,$(deb_$(p))))
MISSING_DEBS += $(if $(wildcard /usr/include/libstemmer.h $(if $(DEPS),$(DEPS)/include/libstemmer.h)),,libstemmer-dev)
MISSING_DEBS := $(strip $(MISSING_DEBS))
FOUND_PKGS := $(foreach p,$(HOST_PKGS),$(if $(call pkg_found,$(p)),$(p)))
PKG_CFLAGS := $(DEPS_CFLAGS) $(if $(FOUND_PKGS),$(shell $(PKG_CONFIG) --cflags $(FOUND_PKGS)))
PKG_LIBS := $(DEPS_LDFLAGS) $(if $(FOUND_PKGS),$(shell $(PKG_CONFIG) --libs $(FOUND_PKGS)))

# MPI through mpicc (Open MPI's --showme, MPICH's -show)
HAVE_MPI :=
ifneq ($(NO_MPI),1)
  MPICC := $(shell command -v mpicc 2>/dev/null)
  ifneq ($(MPICC),)
    MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null || mpicc -show 2>/dev/null | tr ' ' '\n' | grep -E '^-I' | tr '\n' ' ')
    MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null || mpicc -show 2>/dev/null | tr ' ' '\n' | grep -E '^-[Ll]|^-Wl' | tr '\n' ' ')
    HAVE_MPI := yes
  endif
endif

# CUDA: nvcc on PATH or in /usr/local/cuda; cuDNN and NCCL by their headers and libraries
HAVE_CUDA :=
ifneq ($(NO_CUDA),1)
  NVCC := $(or $(shell command -v nvcc 2>/dev/null),$(wildcard /usr/local/cuda/bin/nvcc))
  ifneq ($(NVCC),)
    HAVE_CUDA := yes
    CUDA_HOME := $(patsubst %/bin/nvcc,%,$(NVCC))
    CUDA_LIBDIR := $(firstword $(wildcard $(CUDA_HOME)/lib64 $(CUDA_HOME)/targets/x86_64-linux/lib))
    probe_lib = $(firstword $(foreach d,$(CUDA_LIBDIR) /usr/lib/x86_64-linux-gnu /usr/local/lib,$(wildcard $(d)/lib$(1).so)))
    probe_hdr = $(firstword $(foreach d,$(CUDA_HOME)/include /usr/include /usr/local/include $(if $(DEPS),$(DEPS)/include),$(wildcard $(d)/$(1))))
    HAVE_CUDNN := $(if $(filter 1,$(NO_CUDNN)),,$(if $(and $(call probe_hdr,cudnn.h),$(call probe_lib,cudnn)),yes))
    HAVE_NCCL := $(if $(filter 1,$(NO_NCCL)),,$(if $(and $(call probe_hdr,nccl.h),$(call probe_lib,nccl)),yes))
    # the optional cuDNN attention needs the header-only cudnn-frontend too (scripts/install-deps.sh)
    HAVE_CUDNN_FRONTEND := $(if $(and $(HAVE_CUDNN),$(call probe_hdr,cudnn_frontend.h)),yes)
    # cuobjdump (tests read the fat binaries): the toolkit's, or PyPI's nvidia-cuda-cuobjdump (install-deps.sh --python)
    CUOBJDUMP := $(or $(shell command -v cuobjdump 2>/dev/null),$(wildcard $(CUDA_HOME)/bin/cuobjdump),$(firstword \
                 $(shell python3 -c 'import glob, nvidia; print(*[f for p in nvidia.__path__ for f in glob.glob(p + "/*/bin/cuobjdump")])' 2>/dev/null)))
  endif
endif

# Settings that files depend on beyond their sources: write_stamp(file, value) rewrites the file only
# when the value changes, so that what depends on it is rebuilt then.
write_stamp = $(shell mkdir -p $(dir $(1)) && { echo '$(2)' | cmp -s - $(1) || echo '$(2)' > $(1); })
GPU_ARCH_STAMP := $(BUILD)/gen/gpu-arch
$(call write_stamp,$(GPU_ARCH_STAMP),$(GPU_ARCH) cuda=$(HAVE_CUDA))

ifeq ($(MAKELEVEL),0)
  $(info tipcap: cpu=yes cuda=$(or $(HAVE_CUDA),no)$(if $(HAVE_CUDA), (sm_$(subst $() $(),$(comma)sm_,$(GPU_ARCH)) + compute_$(GPU_PTX_ARCH) PTX) cudnn=$(or $(HAVE_CUDNN),no) cudnn-frontend=$(or $(HAVE_CUDNN_FRONTEND),no) nccl=$(or $(HAVE_NCCL),no)) mpi=$(or $(HAVE_MPI),no)$(if $(DEPS), deps=$(DEPS))$(if $(MISSING_DEBS), missing=$(subst $() $(),$(comma),$(MISSING_DEBS))))
endif

# ---------------------------------------------------------------- flags
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter $(if $(filter 1,$(WERROR)),-Werror)
DEFS := $(if $(HAVE_MPI),-DTIPCAP_HAVE_MPI)
CPPFLAGS := -I. $(PKG_CFLAGS) $(if $(HAVE_MPI),$(MPI_CFLAGS)) $(DEFS) -MMD -MP
CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -fopenmp $(WARN)
CXXFLAGS := -std=c++17 -D_GNU_SOURCE -O2 -g -fopenmp $(WARN)
# Kernel sources under the CPU emulation of CUDA (kernels/emu): the .cu files compiled as C++
# Kernels under emulation carry ThreadSanitizer's instrumentation: every memory access calls the
# emulation's access checks (kernels/emu/emu_check.cpp); libtsan itself is not linked.
EMU_CXXFLAGS := $(CXXFLAGS) -DTIPCAP_CUDA_EMU -x c++ -fsanitize=thread --param tsan-instrument-func-entry-exit=0
LDLIBS := $(PKG_LIBS) -lstemmer $(if $(HAVE_MPI),$(MPI_LIBS)) -lm -lpthread -fopenmp

# The architectures of the emulation's device profiles (kernels/emu/emu_device.cpp), and those of them
# that only the PTX serves: no SASS of GPU_ARCH runs there (SASS runs within its major version, from
# its minor up), and the driver compiles the PTX.
EMU_DEVICE_ARCHS := 80 86 89 90 100 120
CUDA_JIT_ARCH := $(shell for d in $(EMU_DEVICE_ARCHS); do sass=; for s in $(GPU_ARCH); do \
                   [ $$((s / 10)) -eq $$((d / 10)) ] && [ $$s -le $$d ] && sass=1; done; \
                   [ -z "$$sass" ] && [ $$d -ge $(GPU_PTX_ARCH) ] && echo $$d; done)
PTXAS := $(CUDA_HOME)/bin/ptxas
# SASS for each GPU_ARCH, and the PTX of the newest beside it (GPU_PTX_ARCH, above)
NVCC_GENCODE := $(foreach a,$(GPU_ARCH),-gencode arch=compute_$(a),code=sm_$(a)) \
                -gencode arch=compute_$(GPU_PTX_ARCH),code=compute_$(GPU_PTX_ARCH)
NVCC_DEFS := $(DEFS) $(if $(HAVE_CUDNN),-DTIPCAP_HAVE_CUDNN) $(if $(HAVE_CUDNN_FRONTEND),-DTIPCAP_HAVE_CUDNN_FRONTEND) \
             $(if $(HAVE_NCCL),-DTIPCAP_HAVE_NCCL)
NVCCFLAGS := -std=c++17 -O3 -g -lineinfo $(NVCC_GENCODE) -I. $(PKG_CFLAGS) $(NVCC_DEFS) \
             -Xcompiler -fopenmp,-Wall,-Wno-unused-parameter $(if $(filter 1,$(WERROR)),-Werror all-warnings)
CUDA_LIBS := $(if $(HAVE_CUDA),-L$(CUDA_LIBDIR) -Wl$(comma)-rpath$(comma)$(CUDA_LIBDIR) -lcudart -lcublas -lcublasLt \
             $(if $(HAVE_CUDNN),-lcudnn) $(if $(HAVE_CUDNN_FRONTEND),-lnvrtc) $(if $(HAVE_NCCL),-lnccl))

# ---------------------------------------------------------------- modules
# Each module.mk appends to:
#   LIB_SRCS     host C sources of libtipcap (everything but the evaluator)
#   CU_SRCS      CUDA sources (.cu): nvcc for the GPU, and the C++ compiler under emulation
#   CUDA_ONLY_SRCS  host C++ of the CUDA library only (library calls with no emulation: cuDNN)
#   NOCUDA_SRCS  host C that programs link in place of a CUDA library when there is no nvcc
#   EMU_SRCS     C++ sources of the emulation runtime
#   EVAL_SRCS    the evaluator's own sources (it depends on nothing else here)
#   PROGRAMS     program names; NAME_SRCS lists the file holding main()
#   TESTS        test names; NAME_SRCS as above; GPU_TESTS: those also built against real CUDA
#   TEST_SCRIPTS test programs that need no build (scripts printing the same summary line)
LIB_SRCS :=
CU_SRCS :=
CUDA_ONLY_SRCS :=
NOCUDA_SRCS :=
EMU_SRCS :=
EVAL_SRCS :=
PROGRAMS :=
TESTS :=
GPU_TESTS :=
TEST_SCRIPTS :=
include common/module.mk kernels/module.mk data/module.mk train/module.mk infer/module.mk \
        eval/module.mk tests/module.mk
-include bench/module.mk

LIB := $(BUILD)/libtipcap.a
EMU_LIB := $(BUILD)/libtipcap_cuda_emu.a
CUDA_LIB := $(BUILD)/libtipcap_cuda.a
EVAL_LIB := $(BUILD)/libtipcap_eval.a

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter %.c,$(1))) $(patsubst %.cpp,$(BUILD)/obj/%.o,$(filter %.cpp,$(1)))
LIB_OBJS := $(call obj,$(LIB_SRCS))
EVAL_OBJS := $(call obj,$(EVAL_SRCS))
EMU_OBJS := $(patsubst %.cu,$(BUILD)/emu/%.o,$(CU_SRCS)) $(patsubst %.cpp,$(BUILD)/emu/%.o,$(EMU_SRCS)) \
            $(BUILD)/emu/gen/emu_cuda_resources.o
CUDA_OBJS := $(patsubst %.cu,$(BUILD)/cuda/%.o,$(CU_SRCS)) $(patsubst %.cpp,$(BUILD)/cuda/%.o,$(CUDA_ONLY_SRCS))

# Programs link the CUDA backend when nvcc exists; they choose the GPU at run time if one is present.
BACKEND_LIBS := $(if $(HAVE_CUDA),$(CUDA_LIB) $(CUDA_LIBS))

# ---------------------------------------------------------------- rules
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	@echo '  CC   $<'
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(@D)
	@echo '  CXX  $<'
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@
$(BUILD)/emu/%.o: %.cu
	@mkdir -p $(@D)
	@echo '  EMU  $<'
	$(Q)$(CXX) $(CPPFLAGS) $(EMU_CXXFLAGS) -c $< -o $@
$(BUILD)/emu/%.o: %.cpp
	@mkdir -p $(@D)
	@echo '  EMU  $<'
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -DTIPCAP_CUDA_EMU -c $< -o $@
# CUDA objects, and in %.ptxas ptxas's report of their kernels (registers, spills, static shared
# memory): for the SASS of each GPU_ARCH (nvcc -Xptxas -v), then for each device profile of the
# emulation that only the PTX serves (CUDA_JIT_ARCH), the PTX compiled by ptxas as the driver would.
# The emulation checks launches against it (kernels/emu/README.md); make check-cuda lists it.
$(BUILD)/cuda/%.o $(BUILD)/cuda/%.ptxas: %.cu $(GPU_ARCH_STAMP)
	@mkdir -p $(@D)
	@echo '  NVCC $<'
	$(Q)keep=$$(mktemp -d) && trap 'rm -rf "$$keep"' EXIT && \
	if ! $(NVCC) $(NVCCFLAGS) -Xptxas -v -keep -keep-dir "$$keep" -MMD -MP -c $< -o $(BUILD)/cuda/$*.o 2>"$$keep/log"; \
	then cat "$$keep/log" >&2; exit 1; fi; \
	grep -v -e '^ptxas info' -e ' bytes stack frame, ' "$$keep/log" >&2; \
	for a in $(CUDA_JIT_ARCH); do \
	  $(PTXAS) -arch=sm_$$a -v "$$keep"/*.compute_$(GPU_PTX_ARCH).ptx -o /dev/null 2>>"$$keep/log" || exit 1; done; \
	mv "$$keep/log" $(BUILD)/cuda/$*.ptxas
CUDA_CXXFLAGS := $(CPPFLAGS) $(NVCC_DEFS) -I$(CUDA_HOME)/include $(CXXFLAGS)
$(BUILD)/cuda/%.o: %.cpp
	@mkdir -p $(@D)
	@echo '  CXX  $< (CUDA)'
	$(Q)$(CXX) $(CUDA_CXXFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	@echo '  AR   $@'
	$(Q)ar rcs $@ $^
$(EMU_LIB): $(EMU_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	@echo '  AR   $@'
	$(Q)ar rcs $@ $^
# The emulation's table of ptxas's reports (kernels/emu/ptxas_table.awk); without nvcc it is empty
# and says so. tests/emu_test_kernels.cu is there too: the emulation checks the tests' launches.
CUDA_PTXAS_LOGS := $(if $(HAVE_CUDA),$(patsubst %.cu,$(BUILD)/cuda/%.ptxas,$(CU_SRCS) tests/emu_test_kernels.cu))
$(BUILD)/gen/emu_cuda_resources.cpp: kernels/emu/ptxas_table.awk $(CUDA_PTXAS_LOGS) $(GPU_ARCH_STAMP)
	@mkdir -p $(@D)
	@echo '  GEN  $@'
	$(Q)awk -v sass_archs="$(GPU_ARCH)" -v ptx_arch=$(GPU_PTX_ARCH) -v have_ptxas=$(if $(HAVE_CUDA),1,0) \
	  -f kernels/emu/ptxas_table.awk $(or $(CUDA_PTXAS_LOGS),/dev/null) > $@
$(BUILD)/emu/gen/emu_cuda_resources.o: $(BUILD)/gen/emu_cuda_resources.cpp
	@mkdir -p $(@D)
	@echo '  EMU  $<'
	$(Q)$(CXX) $(CPPFLAGS) $(CXXFLAGS) -DTIPCAP_CUDA_EMU -c $< -o $@

$(CUDA_LIB): $(CUDA_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	@echo '  AR   $@'
	$(Q)ar rcs $@ $^
$(EVAL_LIB): $(EVAL_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	@echo '  AR   $@'
	$(Q)ar rcs $@ $^

# Programs: bin/NAME from NAME_SRCS. The evaluator links only its own library. The libraries are
# linked as a group: the CUDA and emulation archives call into libtipcap (common/, kernels/*.c).
define program_rule
$(BIN)/$(1): $(call obj,$($(1)_SRCS)) $(if $(filter tipcap-eval,$(1)),$(EVAL_LIB),$(LIB) $(if $(HAVE_CUDA),$(CUDA_LIB),$(call obj,$(NOCUDA_SRCS))))
	@mkdir -p $$(@D)
	@echo '  LD   $$@'
	$(Q)$(CXX) -Wl,--start-group $$^ -Wl,--end-group -o $$@ $(if $(filter tipcap-eval,$(1)),$(DEPS_LDFLAGS) $(shell $(PKG_CONFIG) --libs libcjson 2>/dev/null) -lstemmer -lm -fopenmp,$(CUDA_LIBS) $(LDLIBS))
endef
$(foreach p,$(PROGRAMS),$(eval $(call program_rule,$(p))))

# Tests: build/tests/NAME against the emulated CUDA backend; build/tests-gpu/NAME against real CUDA.
define test_rule
$(BUILD)/tests/$(1): $(call obj,$($(1)_SRCS)) $(LIB) $(EMU_LIB) $(EVAL_LIB)
	@mkdir -p $$(@D)
	@echo '  LD   $$@'
	$(Q)$(CXX) -Wl,--start-group $$^ -Wl,--end-group -o $$@ $(LDLIBS)
endef
$(foreach t,$(TESTS),$(eval $(call test_rule,$(t))))

# `make emu`: bin/emu/tipcap-train and tipcap-infer with the CUDA backend on the emulation (no nvcc
# needed) and NCCL emulated across local processes; `make emu-nonccl`: the same in bin/emu-nonccl/
# without NCCL, as a CUDA build without it.
EMU_PROGRAMS := tipcap-train tipcap-infer
EMU_NONCCL_LIB := $(BUILD)/libtipcap_cuda_emu_nonccl.a
EMU_NONCCL_OBJS := $(filter-out $(BUILD)/emu/train/dist_nccl.o $(BUILD)/emu/kernels/emu/emu_nccl.o,$(EMU_OBJS)) \
                   $(BUILD)/emu-nonccl/train/dist_nccl.o
$(BUILD)/emu/train/dist_nccl.o: EMU_CXXFLAGS += -DTIPCAP_HAVE_NCCL
$(BUILD)/emu-nonccl/train/dist_nccl.o: train/dist_nccl.cu
	@mkdir -p $(@D)
	@echo '  EMU  $< (without NCCL)'
	$(Q)$(CXX) $(CPPFLAGS) $(EMU_CXXFLAGS) -c $< -o $@
$(EMU_NONCCL_LIB): $(EMU_NONCCL_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	@echo '  AR   $@'
	$(Q)ar rcs $@ $^
define emu_program_rule
$(BIN)/$(2)/$(1): $(call obj,$($(1)_SRCS)) $(LIB) $(3)
	@mkdir -p $$(@D)
	@echo '  LD   $$@'
	$(Q)$(CXX) -Wl,--start-group $$^ -Wl,--end-group -o $$@ $(LDLIBS)
endef
$(foreach p,$(EMU_PROGRAMS),$(eval $(call emu_program_rule,$(p),emu,$(EMU_LIB))))
$(foreach p,$(EMU_PROGRAMS),$(eval $(call emu_program_rule,$(p),emu-nonccl,$(EMU_NONCCL_LIB))))
EMU_PROGRAM_BINS := $(addprefix $(BIN)/emu/,$(EMU_PROGRAMS)) $(addprefix $(BIN)/emu-nonccl/,$(EMU_PROGRAMS))
emu: check-host-deps $(addprefix $(BIN)/emu/,$(EMU_PROGRAMS))
emu-nonccl: check-host-deps $(addprefix $(BIN)/emu-nonccl/,$(EMU_PROGRAMS))
.PHONY: emu emu-nonccl

define gpu_test_rule
$(BUILD)/tests-gpu/$(1): $(patsubst %.c,$(BUILD)/gpu-obj/%.o,$($(1)_SRCS)) $(LIB) $(CUDA_LIB)
	@mkdir -p $$(@D)
	@echo '  LD   $$@'
	$(Q)$(CXX) -Wl,--start-group $$^ -Wl,--end-group -o $$@ $(CUDA_LIBS) $(LDLIBS)
endef
$(BUILD)/gpu-obj/%.o: %.c
	@mkdir -p $(@D)
	@echo '  CC   $<'
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -DTIPCAP_TEST_GPU $(if $(HAVE_CUDNN_FRONTEND),-DTIPCAP_HAVE_CUDNN_FRONTEND) -c $< -o $@
$(if $(HAVE_CUDA),$(foreach t,$(GPU_TESTS),$(eval $(call gpu_test_rule,$(t)))))

PROGRAM_BINS := $(addprefix $(BIN)/,$(PROGRAMS))
TEST_BINS := $(addprefix $(BUILD)/tests/,$(TESTS))
GPU_TEST_BINS := $(addprefix $(BUILD)/tests-gpu/,$(GPU_TESTS))

# ---------------------------------------------------------------- targets
.PHONY: all deps programs test test-run test-gpu check-cuda demo install clean

all: check-host-deps $(PROGRAM_BINS)
programs: $(PROGRAM_BINS)

check-host-deps:
	@if [ -n "$(MISSING_DEBS)" ]; then \
	  echo "error: missing Debian packages: $(MISSING_DEBS)"; \
	  echo "       install them with: sudo scripts/install-deps.sh (or apt-get install $(MISSING_DEBS))"; exit 1; fi
.PHONY: check-host-deps

deps:
	@scripts/install-deps.sh --python

# `make test`: installs what is missing, builds, runs every test program through tests/run.sh.
test: deps
	@$(MAKE) --no-print-directory test-run

# tests/test_gpu_session.sh: scripts/gpu-session.sh's dry run and its stop without a GPU (1 s).
# The tests of the grid-stride kernels run again with every grid capped at 2 blocks, so that each
# loop takes more than one pass over their arrays (kernels/cuda_utils.cuh).
test-run: check-host-deps $(PROGRAM_BINS) $(EMU_PROGRAM_BINS) $(TEST_BINS)
	@tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS) tests/test_gpu_session.sh \
	  TIPCAP_EMU_MAX_BLOCKS=2 $(addprefix $(BUILD)/tests/,$(GRID_STRIDE_TESTS))

# `make mutants`: removes each __syncthreads() of kernels/ in turn and runs the kernel tests under
# the emulation; every mutant must fail (scripts/barrier-mutants.sh). Slow: not part of make test.
mutants:
	@scripts/barrier-mutants.sh
.PHONY: mutants

test-gpu: deps
	@$(MAKE) --no-print-directory test-gpu-run
test-gpu-run: check-host-deps
	@if [ -z "$(HAVE_CUDA)" ]; then echo "error: make test-gpu needs nvcc (the CUDA toolkit)"; exit 1; fi
	@if ! nvidia-smi -L >/dev/null 2>&1; then echo "error: make test-gpu needs an NVIDIA GPU, and nvidia-smi finds none"; exit 1; fi
	@$(MAKE) --no-print-directory $(GPU_TEST_BINS) $(PROGRAM_BINS)
	@TIPCAP_REQUIRE_GPU=1 tests/run.sh $(GPU_TEST_BINS)
.PHONY: test-gpu-run

# Compiles every .cu with nvcc for each GPU_ARCH, warnings as errors; runs nothing.
CHECK_CUDA_OBJS := $(patsubst %.cu,$(BUILD)/check-cuda/%.o,$(CU_SRCS)) $(patsubst %.cpp,$(BUILD)/check-cuda/%.o,$(CUDA_ONLY_SRCS))
$(BUILD)/check-cuda/%.o: %.cu $(GPU_ARCH_STAMP)
	@mkdir -p $(@D)
	@echo '  NVCC $< (check)'
	$(Q)$(NVCC) $(filter-out -Werror all-warnings,$(NVCCFLAGS)) -Werror all-warnings -Xcompiler -Werror -c $< -o $@
$(BUILD)/check-cuda/%.o: %.cpp
	@mkdir -p $(@D)
	@echo '  CXX  $< (check)'
	$(Q)$(CXX) $(CUDA_CXXFLAGS) -Werror -c $< -o $@
check-cuda:
	@if [ -z "$(HAVE_CUDA)" ]; then echo "error: make check-cuda needs nvcc (the CUDA toolkit)"; exit 1; fi
	@$(MAKE) --no-print-directory $(CHECK_CUDA_OBJS)
	@echo "check-cuda: $(words $(CU_SRCS) $(CUDA_ONLY_SRCS)) CUDA sources compiled for sm_$(subst $() $(),$(comma)sm_,$(GPU_ARCH)) + compute_$(GPU_PTX_ARCH) PTX without warnings"
	@$(BUILD)/emu/cuda-resources > $(BUILD)/cuda-resources.tsv.tmp || { rm -f $(BUILD)/cuda-resources.tsv.tmp; exit 1; }
	@mv $(BUILD)/cuda-resources.tsv.tmp $(BUILD)/cuda-resources.tsv
	@echo "check-cuda: $(BUILD)/cuda-resources.tsv: $$(($$(wc -l < $(BUILD)/cuda-resources.tsv) - 1)) kernel instantiations x architectures, no register spills"

demo: deps
	@$(MAKE) --no-print-directory programs
	@scripts/demo.sh

# Programs to PREFIX/bin; the data they read at run time (common/paths.h) to PREFIX/share/tipcap.
INSTALL_DATA := gpt2 vocab meteor
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/tipcap
	install -m 755 $(PROGRAM_BINS) $(DESTDIR)$(PREFIX)/bin/
	cp -r $(addprefix data/,$(INSTALL_DATA)) $(DESTDIR)$(PREFIX)/share/tipcap/

# ---------------------------------------------------------------- GPU sessions (docs/BUILD.md)
# `make gpu-bundle`: what a GPU machine may lack, packed from this machine for DEPS_PREFIX;
# `make gpu-session-programs`: what scripts/gpu-session.sh runs; `make check-require-gpu`: on a
# machine without a GPU, every GPU test program skips its GPU cases, and fails them with
# TIPCAP_REQUIRE_GPU=1.
GPU_BUNDLE := $(BUILD)/gpu-bundle.tar.xz
gpu-bundle:
	@scripts/gpu-bundle.sh $(GPU_BUNDLE)
gpu-session-programs: check-host-deps $(PROGRAM_BINS) $(GPU_TEST_BINS) bench
check-require-gpu: check-host-deps
	@if [ -z "$(HAVE_CUDA)" ]; then echo "error: make check-require-gpu needs nvcc (the CUDA toolkit)"; exit 1; fi
	@$(MAKE) --no-print-directory $(GPU_TEST_BINS)
	@tests/check-require-gpu.sh $(GPU_TEST_BINS)
.PHONY: gpu-bundle gpu-session-programs check-require-gpu

# Mutants of every grid-stride loop's step: each must fail its kernel's tests (tests/check-grid-stride.sh).
check-grid-stride: check-host-deps
	@tests/check-grid-stride.sh
.PHONY: check-grid-stride

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
