# infer/: see infer/README.md.
LIB_SRCS += infer/decode.c infer/prompts.c infer/results.c
PROGRAMS += tipcap-infer
tipcap-infer_SRCS := infer/infer_main.c
