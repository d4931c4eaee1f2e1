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
