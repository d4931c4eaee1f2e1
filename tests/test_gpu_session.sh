#!/usr/bin/env bash
# scripts/gpu-session.sh on this machine, without building or running anything on a GPU: its
# options, the dry run of the GPU steps, the early stop without a GPU, and a spent time budget.
# Prints its cases like harness.h and ends with "N passed, N failed, N skipped" (tests/run.sh).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0 skipped=0
case_failed=0
fail() { [ "$case_failed" = 1 ] || echo "FAIL $name"; echo "  $*"; case_failed=1; }
skip() { echo "SKIP $name: $*"; skipped=$((skipped + 1)); }
done_case() { if [ "$case_failed" = 1 ]; then failed=$((failed + 1)); else passed=$((passed + 1)); echo "ok   $name"; fi; case_failed=0; }
session() { scripts/gpu-session.sh "$@" > "$tmp/stdout" 2>&1; }
has_gpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
has_nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null)

name=options
session --help; rc=$?
[ $rc -eq 0 ] || fail "--help: exit $rc"
grep -q -- '--dry-run' "$tmp/stdout" || fail "--help does not name --dry-run"
session --bogus "$tmp/bogus"; rc=$?
[ $rc -eq 2 ] || fail "--bogus: exit $rc, expected 2"
grep -q 'unknown option --bogus' "$tmp/stdout" || fail "--bogus: no message naming it"
done_case

name=dry_run_lists_every_gpu_step
if [ -z "$has_nvcc" ]; then skip "no nvcc (env fails without the toolkit)"; else
    out=$tmp/dry
    session --dry-run --steps test-gpu,sanitizers,benches,bench-gpu "$out"; rc=$?
    [ $rc -eq 0 ] || fail "exit $rc: $(tail -n 3 "$tmp/stdout")"
    for tool in memcheck racecheck synccheck initcheck; do
        for t in test_attention test_decode test_ops test_cholesky; do
            grep -q "would run: TIPCAP_TEST_SMALL=1 TIPCAP_REQUIRE_GPU=1 compute-sanitizer --tool $tool .*build/tests-gpu/$t " \
                "$tmp/stdout" || fail "no $tool run of $t printed"
        done
    done
    for b in bench_attention bench_decode bench_gap_sample bench_cholesky bench_kernels; do
        grep -q "would run: bin/bench/$b " "$tmp/stdout" || fail "no $b printed"
    done
    grep -q 'would run: make .*test-gpu-run' "$tmp/stdout" || fail "no make test-gpu-run printed"
    grep -q 'would run: .*bench/bench_gpu.sh' "$tmp/stdout" || fail "no bench/bench_gpu.sh printed"
    for s in env test-gpu sanitizers benches bench-gpu; do
        grep -q "^$s " "$out/summary.txt" 2>/dev/null || fail "summary.txt has no line for $s"
    done
    for s in deps build libs; do grep -q "^$s " "$out/summary.txt" 2>/dev/null && fail "summary.txt runs $s, not asked for"; done
    [ "$(grep -c ' dry-run ' "$out/summary.txt" 2>/dev/null)" -eq 4 ] || fail "not 4 steps in dry-run state: $(cat "$out/summary.txt")"
    [ -f "$out/06-sanitizers.log" ] || fail "no log of the sanitizers step under $out"
fi
done_case

name=no_gpu_stops_after_env
if [ "${has_gpu:-0}" -gt 0 ]; then skip "this machine has a GPU"; else
    out=$tmp/nogpu
    session "$out"; rc=$?
    [ $rc -ne 0 ] || fail "exit 0 without a GPU"
    grep -q 'no GPU' "$tmp/stdout" || fail "no 'no GPU' message: $(head -n 2 "$tmp/stdout")"
    grep -q '^env  *FAIL' "$out/summary.txt" 2>/dev/null || fail "summary.txt has no failed env step"
    [ "$(grep -c -v -E '^(step|env|total)' "$out/summary.txt" 2>/dev/null)" -eq 0 ] || fail "steps ran after env: $(cat "$out/summary.txt")"
fi
done_case

name=spent_budget_fails_every_step
out=$tmp/budget
GPU_SESSION_BUDGET=0 session --dry-run "$out"; rc=$?
[ $rc -ne 0 ] || fail "exit 0 with no time"
[ "$(grep -c ' no time ' "$out/summary.txt" 2>/dev/null)" -eq 8 ] || fail "not 8 steps 'no time': $(cat "$out/summary.txt" 2>/dev/null)"
done_case

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
