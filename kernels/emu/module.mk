# kernels/emu/: the CPU emulation of CUDA (see kernels/emu/README.md). Its runtime goes into
# build/libtipcap_cuda_emu.a with the kernels compiled under emulation.
EMU_SRCS += kernels/emu/emu_runtime.cpp kernels/emu/emu_exec.cpp kernels/emu/emu_cublas.cpp kernels/emu/emu_check.cpp

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

# `make bench-emu`: the emulation's own speed (bench/bench_emu.cu, compiled under the emulation).
$(BIN)/bench/bench_emu: $(BUILD)/emu/bench/bench_emu.o $(BUILD)/libtipcap_cuda_emu.a $(BUILD)/libtipcap.a
	@mkdir -p $(@D)
	@echo '  LD   $@'
	$(Q)$(CXX) $^ -o $@ $(LDLIBS)
bench-emu: $(BIN)/bench/bench_emu
.PHONY: bench-emu
