# train/: see train/README.md.
LIB_SRCS += train/safetensors.c train/model.c train/train_config.c train/checkpoint.c
TESTS += test_safetensors
test_safetensors_SRCS := tests/test_safetensors.c
