# common/: host-side helpers shared by every part but the evaluator.
LIB_SRCS += common/check.c common/log.c common/atomic_file.c common/config.c common/paths.c common/runtime.c common/cli.c common/utf8.c
