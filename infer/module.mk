# infer/: see infer/README.md.
LIB_SRCS += infer/decode.c infer/prompts.c infer/results.c
