# kernels/: ops on two backends; see kernels/README.md.
LIB_SRCS += kernels/attention.c
