#!/usr/bin/env bash
# Single-barrier mutants: for each __syncthreads() in kernels/*.cu and kernels/*.cuh, one at a time,
# a scratch copy of the tree without that barrier is rebuilt and the kernel tests run under the
# emulation (race checks on). A mutant that passes them all "survives": either the tests miss the
# race it makes, or the barrier is redundant. Prints one line per mutant and a summary; exits
# non-zero if any survives. `make mutants` runs it (not part of make test: it takes a while).
# usage: scripts/barrier-mutants.sh [FILE:LINE...]   (default: every barrier)
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
tests_all="test_ops test_attention test_decode test_cholesky test_gap_sample test_model"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}" OPENBLAS_THREAD_TIMEOUT="${OPENBLAS_THREAD_TIMEOUT:-4}"

scratch=$(mktemp -d /tmp/tipcap-mutants.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# the working tree as it is (tracked and untracked, not ignored files) and the build, to rebuild little
(cd "$root" && git ls-files -co --exclude-standard -z | xargs -0 cp -p --parents -t "$scratch" 2>/dev/null)
[ -d "$root/build" ] && cp -a "$root/build" "$scratch/build"
cd "$scratch" || exit 1
make -j2 $(for t in $tests_all; do echo "build/tests/$t"; done) >/dev/null 2>&1 || { echo "error: the unmutated tree does not build"; exit 1; }

if [ $# -gt 0 ]; then sites="$*"
else sites=$(grep -nP '^(?:(?!//).)*__syncthreads\(\)' kernels/*.cu kernels/*.cuh | cut -d: -f1,2); fi  # not in comments

# The test that exercises a file runs first; the others only if it passes.
tests_for() {
    case "$1" in
        kernels/attention.cu) echo "test_attention $tests_all";;
        kernels/decode.cu) echo "test_decode $tests_all";;
        kernels/cholesky.cu) echo "test_cholesky $tests_all";;
        kernels/gap_sample.cu) echo "test_gap_sample $tests_all";;
        *) echo "$tests_all";;
    esac
}

killed=0 survived=0 start=$(date +%s)
for site in $sites; do
    file=${site%%:*} line=${site##*:}
    cp "$root/$file" "$file"
    sed -i "${line}s/__syncthreads()/(void)0/" "$file"
    touch "$file"
    verdict="SURVIVES"
    for t in $(tests_for "$file" | tr ' ' '\n' | awk '!seen[$0]++'); do
        if ! make -j2 "build/tests/$t" >"$scratch/build.log" 2>&1; then
            echo "error: mutant $site does not build"; cat "$scratch/build.log"; exit 1
        fi
        if ! timeout 600 "build/tests/$t" >"$scratch/test.log" 2>&1; then
            why=$(grep -m1 -E 'error: CUDA emulation|^FAIL' "$scratch/test.log" | cut -c1-150)
            verdict="killed by $t: ${why:-exit status non-zero}"
            break
        fi
    done
    cp "$root/$file" "$file"
    touch "$file"
    echo "$site: $verdict"
    if [ "$verdict" = SURVIVES ]; then survived=$((survived + 1)); else killed=$((killed + 1)); fi
done
echo "$killed killed, $survived survived ($(( $(date +%s) - start )) s)"
[ "$survived" -eq 0 ]
