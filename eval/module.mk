# eval/: tipcap-eval, the COCO caption metrics (see eval/README.md, docs/EVAL.md). Standalone:
# it links only its own library, cJSON, libstemmer and libm.
EVAL_SRCS += eval/ptb_tokenizer.c eval/ngrams.c eval/bleu.c eval/rouge.c eval/cider.c eval/util.c \
             eval/meteor.c eval/meteor_normalize.c eval/spice_approx.c eval/input.c eval/evaluate.c
PROGRAMS += tipcap-eval
tipcap-eval_SRCS := eval/main.c

TESTS += test_eval
test_eval_SRCS := tests/test_eval.c

# The cross-check against pycocoevalcap itself (installs it and Java when missing).
.PHONY: check-eval-oracle
check-eval-oracle:
	@scripts/check-eval-oracle
