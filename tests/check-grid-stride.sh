#!/usr/bin/env bash
# Mutants of every grid-stride loop in kernels/*.cu: each loop's step `+= S` becomes `+= 2 * S`
# (every other pass left out) and, for the size_t loops, `-= S` (no pass after the first). Each
# mutant is built into the emulation and must fail the tests of its kernel as make test runs them
# (once as they are, once with TIPCAP_EMU_MAX_BLOCKS=2); the table says which run caught it.
# The source is restored afterwards, also when interrupted.
# usage: tests/check-grid-stride.sh [FILE:LINE...]   (make check-grid-stride; default: every loop)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
# The step of a grid-stride loop: over the grid's threads, its rows (decode's gridDim.y) or warps.
STEP='\+= (\(size_t\)gridDim\.x \* blockDim\.x|gridDim\.y|warps)\b'
tests_of() {
    case $1 in
        kernels/cholesky.cu) echo test_cholesky ;;
        kernels/decode.cu) echo test_decode ;;
        kernels/gap_sample.cu) echo test_gap_sample test_ops ;;
        *) echo test_ops ;;
    esac
}
if [ $# -gt 0 ]; then sites=("$@"); else mapfile -t sites < <(grep -nE "$STEP" kernels/*.cu | cut -d: -f1,2); fi
[ ${#sites[@]} -gt 0 ] || { echo "check-grid-stride: no grid-stride loop found in kernels/*.cu" >&2; exit 2; }

backup=$(mktemp -d)
current=
restore() { [ -z "$current" ] || cp "$backup/src" "$current"; current=; }
trap 'restore; rm -rf "$backup"; exit 130' INT TERM
trap 'restore; rm -rf "$backup"' EXIT

# Runs the tests of a kernel as make test does; prints which runs failed ("-" for none).
run_tests() {
    local caught='' t
    for t in "$@"; do
        timeout 300 "build/tests/$t" > "$backup/log" 2>&1 || caught="$caught $t"
        TIPCAP_EMU_MAX_BLOCKS=2 timeout 300 "build/tests/$t" > "$backup/log" 2>&1 || caught="$caught $t(2-blocks)"
    done
    echo "${caught:- -}"
}

printf '%-26s %-9s %s\n' site mutant "failed runs"
survivors=0 n=0
for site in "${sites[@]}"; do
    file=${site%%:*} line=${site##*:}
    text=$(sed -n "${line}p" "$file")
    [ "$(grep -oE '(\+|-)=' <<<"$text" | wc -l)" -eq 1 ] || { echo "$site: not one step on the line: $text" >&2; exit 2; }
    read -r -a tests <<<"$(tests_of "$file")"
    mutants=(double)
    [[ $text == *'(size_t)gridDim.x * blockDim.x'* ]] && mutants+=(minus)
    for m in "${mutants[@]}"; do
        cp "$file" "$backup/src"
        current=$file
        case $m in
            double) sed -i -E "${line}s/\\+= /+= 2 * /" "$file" ;;
            minus) sed -i -E "${line}s/\\+= /-= /" "$file" ;;
        esac
        if ! make -j2 --no-print-directory "${tests[@]/#/build/tests/}" > "$backup/build.log" 2>&1; then
            echo "$site $m: the mutant does not build" >&2
            tail -n 5 "$backup/build.log" >&2
            exit 2
        fi
        caught=$(run_tests "${tests[@]}")
        restore
        n=$((n + 1))
        [ "$caught" != " -" ] || survivors=$((survivors + 1))
        printf '%-26s %-9s %s\n' "$site" "$m" "$caught"
    done
done
mapfile -t all_tests < <(for s in "${sites[@]}"; do tests_of "${s%%:*}"; done | tr ' ' '\n' | sort -u)
make -j2 --no-print-directory "${all_tests[@]/#/build/tests/}" > "$backup/build.log" 2>&1 \
    || { echo "check-grid-stride: the restored source does not build" >&2; exit 2; }
echo "check-grid-stride: $n mutants of ${#sites[@]} loops, $survivors not caught"
[ "$survivors" -eq 0 ]
