# tests/: one program per area; tests/run.sh runs them all and adds the counts up.
TESTS += test_common
test_common_SRCS := tests/test_common.c
