# train/: see train/README.md.
LIB_SRCS += train/safetensors.c train/model.c train/train_config.c train/checkpoint.c train/dist.c train/report.c
NOCUDA_SRCS += train/dist_nocuda.c
CU_SRCS += train/dist_nccl.cu
TESTS += test_safetensors
test_safetensors_SRCS := tests/test_safetensors.c
LIB_SRCS += train/trainer.c train/gpt2_import.c train/token_vocab.c
PROGRAMS += tipcap-train
tipcap-train_SRCS := train/train_main.c
TESTS += test_model
test_model_SRCS := tests/test_model.c
GPU_TESTS += test_model
TESTS += test_train
test_train_SRCS := tests/test_train.c
# Data parallel on the emulated GPU (bin/emu/, bin/emu-nonccl/): mpirun, srun without MPI, no NCCL
TESTS += test_dist
test_dist_SRCS := tests/test_dist.c
TESTS += test_train_resume
test_train_resume_SRCS := tests/test_train_resume.c
