# tests/: one program per area; tests/run.sh runs them all and adds the counts up.
TESTS += test_common
test_common_SRCS := tests/test_common.c
TESTS += test_sweep
test_sweep_SRCS := tests/test_sweep.c

# The test cases whose oracle is PyTorch (transformers, open_clip), with PyTorch installed in a
# virtual environment: make test skips them where python3 has no torch.
.PHONY: check-torch-oracle
check-torch-oracle:
	@scripts/check-torch-oracle
