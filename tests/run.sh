#!/usr/bin/env bash
# Runs test programs and adds their counts up. Each program prints its cases and ends with
# "N passed, N failed, N skipped"; a program that crashes or prints no summary counts as one
# failure. Ends with one line "N passed, N failed, N skipped"; exits non-zero on any failure.
# usage: tests/run.sh [VAR=VALUE | PROGRAM]...   (VAR=VALUE: set for the programs after it)
set -u
# OpenMP threads spin after each parallel region and take the CPU from the CUDA emulation's worker
# threads (kernels/emu/README.md): tests wait passively unless told otherwise.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
# OpenBLAS's idle threads spin likewise unless told to sleep at once (common/runtime.h).
export OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"
passed=0 failed=0 skipped=0
settings=
for prog in "$@"; do
    if [[ $prog == *=* ]]; then
        export "${prog?}"
        settings="$settings $prog"
        continue
    fi
    name=$(basename "$prog")${settings:+ ($settings)}
    name=${name/( /(}
    echo "== $name"
    log=$(mktemp)
    "$prog" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$summary" ]; then
        echo "FAIL $name: exited with status $rc without a summary line"
        failed=$((failed + 1))
        continue
    fi
    read -r p f s <<<"$(echo "$summary" | sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$/\1 \2 \4/')"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
