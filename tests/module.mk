# tests/: one program per area; tests/run.sh runs them all and adds the counts up.
TESTS += test_common
test_common_SRCS := tests/test_common.c
TESTS += test_sweep
test_sweep_SRCS := tests/test_sweep.c

# The test cases whose oracle is PyTorch (transformers, open_clip), with PyTorch installed in a
# virtual environment: make test skips them where python3 has no torch.
.PHONY: check-torch-oracle
check-torch-oracle:
	@scripts/check-torch-oracle

# The CUDA library's fat binaries (PTX beside the SASS), read with cuobjdump after the library is built.
TESTS += test_cuda_build
test_cuda_build_SRCS := tests/test_cuda_build.c
$(call write_stamp,$(BUILD)/gen/cuobjdump,$(CUOBJDUMP))
$(BUILD)/obj/tests/test_cuda_build.o: $(BUILD)/gen/cuobjdump
$(BUILD)/obj/tests/test_cuda_build.o: CPPFLAGS += -DTIPCAP_CUOBJDUMP='"$(CUOBJDUMP)"' -DTIPCAP_CUDA_LIB='"$(BUILD)/libtipcap_cuda.a"'
ifneq ($(HAVE_CUDA),)
test-run: $(BUILD)/libtipcap_cuda.a
endif
