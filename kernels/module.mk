# kernels/: ops on two backends; see kernels/README.md and docs/KERNELS.md.
include kernels/emu/module.mk
LIB_SRCS += kernels/attention.c
LIB_SRCS += kernels/cast.c kernels/embedding.c kernels/bag_mean.c kernels/layernorm.c kernels/matmul.c \
            kernels/gelu.c kernels/add.c kernels/crossentropy.c kernels/adamw.c kernels/reduce.c kernels/random.c \
            kernels/gap_sample.c kernels/backend_cpu.c
CU_SRCS += kernels/cast.cu kernels/embedding.cu kernels/rowscatter.cu kernels/bag_mean.cu kernels/layernorm.cu \
           kernels/matmul.cu kernels/gelu.cu kernels/add.cu kernels/crossentropy.cu kernels/adamw.cu kernels/reduce.cu \
           kernels/random.cu kernels/gap_sample.cu kernels/backend_cuda.cu
NOCUDA_SRCS += kernels/backend_nocuda.c

TESTS += test_gradcheck test_ops
GPU_TESTS += test_ops
test_gradcheck_SRCS := tests/test_gradcheck.c
test_ops_SRCS := tests/test_ops.c

# Cholesky (CPU through LAPACKE; the CUDA kernels in cholesky.cu)
LIB_SRCS += kernels/cholesky.c
CU_SRCS += kernels/cholesky.cu

# Incremental decoding: cached attention, rows gather, log-softmax top-k (kernels/decode.*)
LIB_SRCS += kernels/decode.c
CU_SRCS += kernels/decode.cu
TESTS += test_decode
GPU_TESTS += test_decode
test_decode_SRCS := tests/test_decode.c

# Attention (CPU reference in attention.c above; the CUDA kernels in attention.cu; cuDNN's fused
# attention as an optional path of the GPU build when the cudnn-frontend headers are there)
CU_SRCS += kernels/attention.cu
CUDA_ONLY_SRCS += $(if $(HAVE_CUDNN_FRONTEND),kernels/attention_cudnn.cpp)
TESTS += test_attention
GPU_TESTS += test_attention
test_attention_SRCS := tests/test_attention.c

# Cholesky (CPU, blocked and batched CUDA, the jitter policy) and the Gaussian mapping's sampling kernels
TESTS += test_cholesky test_gap_sample
GPU_TESTS += test_cholesky test_gap_sample
test_cholesky_SRCS := tests/test_cholesky.c
test_gap_sample_SRCS := tests/test_gap_sample.c
