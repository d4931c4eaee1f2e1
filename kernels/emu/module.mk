# kernels/emu/: the CPU emulation of CUDA (see kernels/emu/README.md). Its runtime goes into
# build/libtipcap_cuda_emu.a with the kernels compiled under emulation.
EMU_SRCS += kernels/emu/emu_runtime.cpp kernels/emu/emu_exec.cpp kernels/emu/emu_cublas.cpp kernels/emu/emu_nccl.cpp \
            kernels/emu/emu_device.cpp kernels/emu/emu_symbols.cpp kernels/emu/emu_check.cpp

# Tests of the emulation. Their kernels (tests/emu_test_kernels.cu) join the emulation library,
# which only tests link; with nvcc they also build test-gpu's test_emu, checking the same
# expectations on a real GPU, and `make check-cuda` compiles them.
TESTS += test_emu
test_emu_SRCS := tests/test_emu.c
$(BUILD)/libtipcap_cuda_emu.a: $(BUILD)/emu/tests/emu_test_kernels.o
ifneq ($(HAVE_CUDA),)
GPU_TESTS += test_emu
$(BUILD)/tests-gpu/test_emu: $(BUILD)/cuda/tests/emu_test_kernels.o
check-cuda: $(BUILD)/check-cuda/tests/emu_test_kernels.o
endif

# build/emu/cuda-resources (kernels/emu/cuda_resources_main.cpp): the table `make check-cuda` writes to
# build/cuda-resources.tsv. The whole emulation library goes in: every kernel with its DYNAMIC_SHARED.
$(BUILD)/emu/cuda-resources: $(BUILD)/emu/kernels/emu/cuda_resources_main.o $(BUILD)/libtipcap_cuda_emu.a $(BUILD)/libtipcap.a
	@mkdir -p $(@D)
	@echo '  LD   $@'
	$(Q)$(CXX) $< -Wl,--whole-archive $(BUILD)/libtipcap_cuda_emu.a -Wl,--no-whole-archive $(BUILD)/libtipcap.a -o $@ $(LDLIBS)
ifneq ($(HAVE_CUDA),)
check-cuda: $(BUILD)/emu/cuda-resources
endif

# `make bench-emu`: the emulation's own speed (bench/bench_emu.cu, compiled under the emulation).
$(BIN)/bench/bench_emu: $(BUILD)/emu/bench/bench_emu.o $(BUILD)/libtipcap_cuda_emu.a $(BUILD)/libtipcap.a
	@mkdir -p $(@D)
	@echo '  LD   $@'
	$(Q)$(CXX) $^ -o $@ $(LDLIBS)
bench-emu: $(BIN)/bench/bench_emu
.PHONY: bench-emu

# Tests of the emulated devices and NCCL, one forked process per rank; their calls
# (tests/emu_nccl_ranks.cu) join the emulation library.
TESTS += test_emu_nccl
test_emu_nccl_SRCS := tests/test_emu_nccl.c
$(BUILD)/libtipcap_cuda_emu.a: $(BUILD)/emu/tests/emu_nccl_ranks.o
