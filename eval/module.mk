# eval/: tipcap-eval, the COCO caption metrics (see eval/README.md, docs/EVAL.md). Standalone:
# it links only its own library, cJSON, libstemmer and libm.
EVAL_SRCS += eval/ptb_tokenizer.c eval/ngrams.c eval/bleu.c eval/rouge.c eval/cider.c eval/util.c \
             eval/meteor.c eval/meteor_normalize.c eval/paraphrase_index.c eval/spice_approx.c eval/input.c eval/tokenize.c eval/evaluate.c
PROGRAMS += tipcap-eval
tipcap-eval_SRCS := eval/main.c

TESTS += test_eval test_eval_cli
# the Python package (eval/setup.py), built and installed into a scratch folder by the test
TEST_SCRIPTS += tests/test_eval_python.py
test_eval_SRCS := tests/test_eval.c
test_eval_cli_SRCS := tests/test_eval_cli.c

# The cross-check against pycocoevalcap itself (installs it and Java when missing).
.PHONY: check-eval-oracle
check-eval-oracle:
	@scripts/check-eval-oracle

# Fuzzing (clang's libFuzzer with ASan/UBSan): `make fuzz-eval FUZZ_SECONDS=600` runs each target.
FUZZ_SECONDS ?= 60
EVAL_FUZZ_DIR := $(BUILD)/fuzz-eval
EVAL_FUZZ_FLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -I. $(shell pkg-config --cflags libcjson) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
EVAL_FUZZ_LIBS := $(shell pkg-config --libs libcjson) -lstemmer -lm
$(EVAL_FUZZ_DIR)/fuzz_eval_ptb: eval/fuzz/fuzz_eval_ptb.c $(EVAL_SRCS)
	@mkdir -p $(@D)
	clang $(EVAL_FUZZ_FLAGS) $^ -o $@ $(EVAL_FUZZ_LIBS)
$(EVAL_FUZZ_DIR)/fuzz_eval_input: eval/fuzz/fuzz_eval_input.c $(EVAL_SRCS)
	@mkdir -p $(@D)
	clang $(EVAL_FUZZ_FLAGS) $^ -o $@ $(EVAL_FUZZ_LIBS)
.PHONY: fuzz-eval
fuzz-eval: $(EVAL_FUZZ_DIR)/fuzz_eval_ptb $(EVAL_FUZZ_DIR)/fuzz_eval_input
	@mkdir -p $(EVAL_FUZZ_DIR)/corpus_ptb $(EVAL_FUZZ_DIR)/corpus_input
	@head -n 200 tests/data/eval/ptb_cases.txt | split -l 1 - $(EVAL_FUZZ_DIR)/corpus_ptb/seed_
	@cp tests/data/eval/nlgeval_*.json $(EVAL_FUZZ_DIR)/corpus_input/
	$(EVAL_FUZZ_DIR)/fuzz_eval_ptb -max_total_time=$(FUZZ_SECONDS) -max_len=512 -artifact_prefix=$(EVAL_FUZZ_DIR)/ $(EVAL_FUZZ_DIR)/corpus_ptb
	$(EVAL_FUZZ_DIR)/fuzz_eval_input -max_total_time=$(FUZZ_SECONDS) -max_len=2048 -artifact_prefix=$(EVAL_FUZZ_DIR)/ $(EVAL_FUZZ_DIR)/corpus_input
