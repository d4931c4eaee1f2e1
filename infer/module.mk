# infer/: see infer/README.md.
LIB_SRCS += infer/decode.c infer/prompts.c infer/results.c
PROGRAMS += tipcap-infer
tipcap-infer_SRCS := infer/infer_main.c
TESTS += test_infer
test_infer_SRCS := tests/test_infer.c
