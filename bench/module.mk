# bench/: GPU microbenchmarks, one program per .cu in GPU_BENCHES (each has its own main()). They
# build only with nvcc, into bin/bench/, with `make bench`; `make check-cuda` compiles them too.
# Nothing here runs in `make test`. Results go in bench/RESULTS.md.
GPU_BENCHES :=
GPU_BENCHES += bench_attention
GPU_BENCHES += bench_decode
GPU_BENCHES += bench_kernels

ifneq ($(HAVE_CUDA),)
define gpu_bench_rule
$(BIN)/bench/$(1): $(BUILD)/cuda/bench/$(1).o $(BUILD)/libtipcap_cuda.a $(BUILD)/libtipcap.a
	@mkdir -p $$(@D)
	@echo '  LD   $$@'
	$(Q)$(CXX) $$^ -o $$@ $(CUDA_LIBS) $(LDLIBS)
endef
$(foreach b,$(GPU_BENCHES),$(eval $(call gpu_bench_rule,$(b))))
bench: $(addprefix $(BIN)/bench/,$(GPU_BENCHES))
check-cuda: $(patsubst %,$(BUILD)/check-cuda/bench/%.o,$(GPU_BENCHES))
else
bench:
	@echo "error: make bench needs nvcc (the CUDA toolkit)"; exit 1
endif
.PHONY: bench

# CPU benchmarks of the data pipeline: bin/bench/NAME from bench/NAME.c, built by `make bench-data`.
DATA_BENCHES := bench_tokenizer
define data_bench_rule
$(BIN)/bench/$(1): $(BUILD)/obj/bench/$(1).o $(BUILD)/libtipcap.a
	@mkdir -p $$(@D)
	@echo '  LD   $$@'
	$(Q)$(CXX) $$^ -o $$@ $(LDLIBS)
endef
$(foreach b,$(DATA_BENCHES),$(eval $(call data_bench_rule,$(b))))
bench-data: $(addprefix $(BIN)/bench/,$(DATA_BENCHES))
.PHONY: bench-data

# CPU benchmark of one transformer block step on the CPU backend: `make bench-cpu`.
CPU_BENCHES := bench_cpu_block
$(foreach b,$(CPU_BENCHES),$(eval $(call data_bench_rule,$(b))))
bench-cpu: $(addprefix $(BIN)/bench/,$(CPU_BENCHES))
.PHONY: bench-cpu

# The modality gap (issue 5): bench_cholesky (against cuSOLVER, linked with -lcusolver) and
# bench_gap_sample on the GPU with `make bench`; bench_gap_cpu on the CPU with `make bench-cpu`.
ifneq ($(HAVE_CUDA),)
$(BIN)/bench/bench_cholesky: $(BUILD)/cuda/bench/bench_cholesky.o $(BUILD)/libtipcap_cuda.a $(BUILD)/libtipcap.a
	@mkdir -p $(@D)
	@echo '  LD   $@'
	$(Q)$(CXX) $^ -o $@ $(CUDA_LIBS) -lcusolver $(LDLIBS)
$(eval $(call gpu_bench_rule,bench_gap_sample))
bench: $(BIN)/bench/bench_cholesky $(BIN)/bench/bench_gap_sample
check-cuda: $(BUILD)/check-cuda/bench/bench_cholesky.o $(BUILD)/check-cuda/bench/bench_gap_sample.o
endif
$(eval $(call data_bench_rule,bench_gap_cpu))
bench-cpu: $(BIN)/bench/bench_gap_cpu
