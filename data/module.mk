# data/: see data/README.md.
PROGRAMS += tipcap-prep
tipcap-prep_SRCS := data/prep_main.c

LIB_SRCS += data/tokenizer.c data/unicode_tables.c
PROGRAMS += tipcap-tokenize
tipcap-tokenize_SRCS := data/tokenize_main.c
TESTS += test_tokenizer
test_tokenizer_SRCS := tests/test_tokenizer.c

LIB_SRCS += data/strmap.c data/corpus.c
TESTS += test_data_corpus
test_data_corpus_SRCS := tests/test_data_corpus.c

LIB_SRCS += data/features.c
TESTS += test_data_features
test_data_features_SRCS := tests/test_data_features.c

LIB_SRCS += data/entities.c data/tokens_cli.c data/entities_cli.c
TESTS += test_data_entities
test_data_entities_SRCS := tests/test_data_entities.c

LIB_SRCS += data/dataset.c
TESTS += test_data_dataset
test_data_dataset_SRCS := tests/test_data_dataset.c

# gap estimation (data/gap.c; docs/GAP.md)
LIB_SRCS += data/gap.c data/gap_inputs.c data/gap_cli.c
TESTS += test_gap
test_gap_SRCS := tests/test_gap.c

LIB_SRCS += data/synth.c
PROGRAMS += tipcap-synth
tipcap-synth_SRCS := data/synth_main.c

TESTS += test_synth
test_synth_SRCS := tests/test_synth.c
TESTS += test_data_cli
test_data_cli_SRCS := tests/test_data_cli.c

# Fuzzing (libFuzzer + ASan + UBSan, clang): `make fuzz-data FUZZ_SECONDS=600` runs each target for
# FUZZ_SECONDS (default 60) from the seeds in data/fuzz/seeds/; crashes land in build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
               -I. $(shell pkg-config --cflags libcjson 2>/dev/null)
FUZZ_COMMON := common/check.c common/paths.c common/utf8.c data/tokenizer.c data/unicode_tables.c
build/fuzz/fuzz_tokenizer: data/fuzz/fuzz_tokenizer.c $(FUZZ_COMMON)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $^ -o $@ $(shell pkg-config --libs libcjson 2>/dev/null) -lm
build/fuzz/fuzz_corpus: data/fuzz/fuzz_corpus.c data/corpus.c data/entities.c data/strmap.c $(FUZZ_COMMON)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) $^ -o $@ $(shell pkg-config --libs libcjson 2>/dev/null) -lm
fuzz-data: build/fuzz/fuzz_tokenizer build/fuzz/fuzz_corpus
	@set -o pipefail; for t in tokenizer corpus; do \
	  mkdir -p build/fuzz/corpus_$$t && \
	  echo "fuzz-data: $$t for $(FUZZ_SECONDS) s" && \
	  (cd build/fuzz && ./fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 corpus_$$t ../../data/fuzz/seeds/$$t \
	     2>&1 | tail -n 12) || exit 1; \
	done
.PHONY: fuzz-data
TESTS += test_data_extract
test_data_extract_SRCS := tests/test_data_extract.c
