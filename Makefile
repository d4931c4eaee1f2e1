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
comma := ,
# V=1 prints every command
Q := $(if $(filter 1,$(V)),,@)

# ---------------------------------------------------------------- probes
pkg_found = $(shell pkg-config --exists $(1) 2>/dev/null && echo yes)
deb_hdf5 := libhdf5-dev
deb_libcjson := libcjson-dev
deb_openblas := libopenblas-dev
deb_lapacke := liblapacke-dev
HOST_PKGS := hdf5 libcjson openblas lapacke
MISSING_DEBS := $(foreach p,$(HOST_PKGS),$(if $(call pkg_found,$(p)),,$(deb_$(p))))
MISSING_DEBS += $(if $(wildcard /usr/include/libstemmer.h),,libstemmer-dev)
MISSING_DEBS := $(strip $(MISSING_DEBS))
FOUND_PKGS := $(foreach p,$(HOST_PKGS),$(if $(call pkg_found,$(p)),$(p)))
PKG_CFLAGS := $(if $(FOUND_PKGS),$(shell pkg-config --cflags $(FOUND_PKGS)))
PKG_LIBS := $(if $(FOUND_PKGS),$(shell pkg-config --libs $(FOUND_PKGS)))

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
    probe_hdr = $(firstword $(foreach d,$(CUDA_HOME)/include /usr/include /usr/local/include,$(wildcard $(d)/$(1))))
    HAVE_CUDNN := $(if $(filter 1,$(NO_CUDNN)),,$(if $(and $(call probe_hdr,cudnn.h),$(call probe_lib,cudnn)),yes))
    HAVE_NCCL := $(if $(filter 1,$(NO_NCCL)),,$(if $(and $(call probe_hdr,nccl.h),$(call probe_lib,nccl)),yes))
    # the optional cuDNN attention needs the header-only cudnn-frontend too (scripts/install-deps.sh)
    HAVE_CUDNN_FRONTEND := $(if $(and $(HAVE_CUDNN),$(call probe_hdr,cudnn_frontend.h)),yes)
  endif
endif

ifeq ($(MAKELEVEL),0)
  $(info tipcap: cpu=yes cuda=$(or $(HAVE_CUDA),no)$(if $(HAVE_CUDA), (sm_$(subst $() $(),$(comma)sm_,$(GPU_ARCH))) cudnn=$(or $(HAVE_CUDNN),no) cudnn-frontend=$(or $(HAVE_CUDNN_FRONTEND),no) nccl=$(or $(HAVE_NCCL),no)) mpi=$(or $(HAVE_MPI),no)$(if $(MISSING_DEBS), missing=$(subst $() $(),$(comma),$(MISSING_DEBS))))
endif

# ---------------------------------------------------------------- flags
WARN := -Wall -Wextra -Wshadow -Wno-unused-parameter $(if $(filter 1,$(WERROR)),-Werror)
DEFS := $(if $(HAVE_MPI),-DTIPCAP_HAVE_MPI) $(if $(HAVE_CUDA),-DTIPCAP_HAVE_CUDA)
CPPFLAGS := -I. $(PKG_CFLAGS) $(if $(HAVE_MPI),$(MPI_CFLAGS)) $(DEFS) -MMD -MP
CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -fopenmp $(WARN)
CXXFLAGS := -std=c++17 -D_GNU_SOURCE -O2 -g -fopenmp $(WARN)
# Kernel sources under the CPU emulation of CUDA (kernels/emu): the .cu files compiled as C++
# Kernels under emulation carry ThreadSanitizer's instrumentation: every memory access calls the
# emulation's access checks (kernels/emu/emu_check.cpp); libtsan itself is not linked.
EMU_CXXFLAGS := $(CXXFLAGS) -DTIPCAP_CUDA_EMU -x c++ -fsanitize=thread --param tsan-instrument-func-entry-exit=0
LDLIBS := $(PKG_LIBS) -lstemmer $(if $(HAVE_MPI),$(MPI_LIBS)) -lm -lpthread -fopenmp

NVCC_GENCODE := $(foreach a,$(GPU_ARCH),-gencode arch=compute_$(a),code=sm_$(a))
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
#   EMU_SRCS     C++ sources of the emulation runtime
#   EVAL_SRCS    the evaluator's own sources (it depends on nothing else here)
#   PROGRAMS     program names; NAME_SRCS lists the file holding main()
#   TESTS        test names; NAME_SRCS as above; GPU_TESTS: those also built against real CUDA
LIB_SRCS :=
CU_SRCS :=
CUDA_ONLY_SRCS :=
EMU_SRCS :=
EVAL_SRCS :=
PROGRAMS :=
TESTS :=
GPU_TESTS :=
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
EMU_OBJS := $(patsubst %.cu,$(BUILD)/emu/%.o,$(CU_SRCS)) $(patsubst %.cpp,$(BUILD)/emu/%.o,$(EMU_SRCS))
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
$(BUILD)/cuda/%.o: %.cu
	@mkdir -p $(@D)
	@echo '  NVCC $<'
	$(Q)$(NVCC) $(NVCCFLAGS) -MMD -MP -c $< -o $@
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
$(BIN)/$(1): $(call obj,$($(1)_SRCS)) $(if $(filter tipcap-eval,$(1)),$(EVAL_LIB),$(LIB) $(if $(HAVE_CUDA),$(CUDA_LIB)))
	@mkdir -p $$(@D)
	@echo '  LD   $$@'
	$(Q)$(CXX) -Wl,--start-group $$^ -Wl,--end-group -o $$@ $(if $(filter tipcap-eval,$(1)),$(shell pkg-config --libs libcjson 2>/dev/null) -lstemmer -lm -fopenmp,$(CUDA_LIBS) $(LDLIBS))
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

test-run: check-host-deps $(PROGRAM_BINS) $(TEST_BINS)
	@tests/run.sh $(TEST_BINS)

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
$(BUILD)/check-cuda/%.o: %.cu
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
	@echo "check-cuda: $(words $(CU_SRCS) $(CUDA_ONLY_SRCS)) CUDA sources compiled for sm_$(subst $() $(),$(comma)sm_,$(GPU_ARCH)) without warnings"

demo: deps
	@$(MAKE) --no-print-directory programs
	@scripts/demo.sh

# Programs to PREFIX/bin; the data they read at run time (common/paths.h) to PREFIX/share/tipcap.
INSTALL_DATA := gpt2 vocab meteor
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/tipcap
	install -m 755 $(PROGRAM_BINS) $(DESTDIR)$(PREFIX)/bin/
	cp -r $(addprefix data/,$(INSTALL_DATA)) $(DESTDIR)$(PREFIX)/share/tipcap/

clean:
	rm -rf $(BUILD) $(BIN)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
