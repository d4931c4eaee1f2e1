#!/usr/bin/env bash
# On a machine without a GPU: each real-CUDA test program (build/tests-gpu/NAME) skips its GPU
# cases and exits 0; with TIPCAP_REQUIRE_GPU=1 each of those cases fails with a message naming
# the variable, the program exits non-zero, and no case is left skipped for want of a GPU.
# usage: tests/check-require-gpu.sh PROGRAM...   (make check-require-gpu)
set -uo pipefail
if nvidia-smi -L >/dev/null 2>&1; then
    echo "check-require-gpu: this machine has a GPU, and the check needs one without: not run"
    exit 0
fi
bad=0
fail() { echo "FAIL $name: $*"; bad=1; prog_bad=1; }
for prog in "$@"; do
    name=$(basename "$prog")
    prog_bad=0
    plain=$("$prog" 2>&1) && rc_plain=0 || rc_plain=$?
    required=$(TIPCAP_REQUIRE_GPU=1 "$prog" 2>&1) && rc_required=0 || rc_required=$?
    skipped=$(sed -n 's/^SKIP \([^:]*\): no CUDA GPU.*/\1/p' <<<"$plain")
    n=$(grep -c . <<<"$skipped")
    [ "$rc_plain" -eq 0 ] || fail "exits $rc_plain without TIPCAP_REQUIRE_GPU"
    [ "$n" -gt 0 ] || fail "skips no case for want of a GPU"
    [ "$rc_required" -ne 0 ] || fail "exits 0 with TIPCAP_REQUIRE_GPU=1"
    for case in $skipped; do
        grep -A1 -x "FAIL $case" <<<"$required" | grep -q "TIPCAP_REQUIRE_GPU=1" \
            || fail "$case does not fail with TIPCAP_REQUIRE_GPU=1"
    done
    left=$(grep -E '^SKIP [^:]*: .*\b(GPU|device)\b' <<<"$required")
    [ -z "$left" ] || fail "still skips with TIPCAP_REQUIRE_GPU=1: $left"
    [ "$prog_bad" -eq 1 ] || echo "$name: $n GPU cases skipped without TIPCAP_REQUIRE_GPU, failed with it (exit $rc_required)"
done
[ "$bad" -eq 0 ] && echo "check-require-gpu: $# programs honour TIPCAP_REQUIRE_GPU=1"
[ "$bad" -eq 0 ]
