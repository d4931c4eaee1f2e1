# data/: see data/README.md.
PROGRAMS += tipcap-prep
tipcap-prep_SRCS := data/prep_main.c

LIB_SRCS += data/tokenizer.c data/unicode_tables.c
PROGRAMS += tipcap-tokenize
tipcap-tokenize_SRCS := data/tokenize_main.c
TESTS += test_tokenizer
test_tokenizer_SRCS := tests/test_tokenizer.c
