#!/usr/bin/env bash
# A GPU session in one command: what a lent GPU machine runs in under 10 minutes (docs/BUILD.md).
#   scripts/gpu-session.sh [--dry-run] [--steps LIST] [OUT_DIR]
# Steps, most valuable first: env (the GPU, the toolkit, the driver), deps (the system's HDF5,
# cJSON, OpenBLAS, LAPACKE and libstemmer, else build/gpu-bundle.tar.xz from `make gpu-bundle`),
# build (this machine's nvcc for its GPU), libs (ldd of every program it runs), test-gpu
# (TIPCAP_REQUIRE_GPU=1), sanitizers (memcheck, racecheck, synccheck, initcheck on the small
# shapes of test_attention, test_decode, test_ops, test_cholesky), benches (bin/bench/*) and
# bench-gpu (bench/bench_gpu.sh). Each step has a time limit, within GPU_SESSION_BUDGET seconds
# (default 560) for the whole; a failing step does not stop the later ones.
# OUT_DIR (default $OUT, else runs/gpu-session-DATE) gets one log per step and summary.txt (step,
# status, seconds, key figures). Exits 0 only when every step passed.
# Without a GPU (or without nvcc) it stops after env and exits 1: every later step would only
# fail, its GPU cases being failures under TIPCAP_REQUIRE_GPU=1.
#   --dry-run (or GPU_SESSION_DRY_RUN=1): for a machine without a GPU: runs env, deps, build (for
#             sm_90) and libs, and prints (and logs) what each later step would run
#   --steps LIST: only these steps (comma-separated; env always runs), e.g. to rerun one
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

ALL_STEPS=(env deps build libs test-gpu sanitizers benches bench-gpu)
# The most seconds each step may take; the last gets what is left of the budget.
declare -A LIMIT=([env]=20 [deps]=40 [build]=240 [libs]=20 [test-gpu]=120 [sanitizers]=150 [benches]=100 [bench-gpu]=600)
SANITIZER_TOOLS=(memcheck racecheck synccheck initcheck)
SANITIZER_TESTS=(test_attention test_decode test_ops test_cholesky)
BENCHES=(bench_attention bench_decode bench_gap_sample bench_cholesky bench_kernels)
HOST_PKGS=(hdf5 libcjson openblas lapacke)
BUNDLE=build/gpu-bundle.tar.xz

dry_run=${GPU_SESSION_DRY_RUN:-0}
steps=$(IFS=,; echo "${ALL_STEPS[*]}")
out=
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        --steps) steps=$2; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        -*) echo "gpu-session: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) out=$1 ;;
    esac
    shift
done
out=${out:-${OUT:-runs/gpu-session-$(date -u +%Y%m%d-%H%M%S)}}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
budget=${GPU_SESSION_BUDGET:-560}
start=$SECONDS
cores=$(nproc)
make_args=()   # for every make call: GPU_ARCH, DEPS_PREFIX (set by env and deps)
figures=       # a step's key figures, set by the step function
dry_commands=0 # commands a dry run's step printed
log=           # the current step's log

say() { echo "$*" | tee -a "$log"; }
# Runs a command with a time limit, its output into the step's log; returns its status (124: timed out).
run_logged() {
    local secs=$1
    shift
    echo "\$ $*" >> "$log"
    timeout --kill-after=10 "$secs" "$@" >> "$log" 2>&1
}
# In a dry run, the steps that need a GPU print their commands instead (and count them).
would_run() { say "would run: $*"; dry_commands=$((dry_commands + 1)); figures="$dry_commands commands"; }
left() { echo $((budget - (SECONDS - start))); }
limit_of() { local l=${LIMIT[$1]} r; r=$(left); [ "$l" -lt "$r" ] && echo "$l" || echo "$r"; }
outcome() { case $1 in 0) echo ok ;; 124|137) echo "timed out" ;; *) echo "exit $1" ;; esac; }
cuda_bin() { command -v "$1" 2>/dev/null || { [ -x "/usr/local/cuda/bin/$1" ] && echo "/usr/local/cuda/bin/$1"; }; }

# ---------------------------------------------------------------- the steps (each sets `figures`)

step_env() {
    local gpus
    gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')
    if [ "${gpus:-0}" -eq 0 ]; then
        if [ "$dry_run" != 1 ]; then
            figures="no GPU: nvidia-smi finds none$(command -v nvidia-smi >/dev/null || echo ' (nvidia-smi is not installed)')"
            say "$figures"
            return 1
        fi
        figures="dry run: no GPU (nvidia-smi finds none), building for sm_90"
        say "$figures"
        make_args+=(GPU_ARCH=90)
    else
        run_logged 20 nvidia-smi
        run_logged 20 nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total,clocks.max.sm --format=csv
        local cap name driver
        cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d ' .')
        name=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)
        driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -n 1)
        make_args+=(GPU_ARCH="$cap")
        figures="$gpus x $name (sm_$cap), driver $driver (CUDA $(nvidia-smi | grep -oE 'CUDA Version: [0-9.]+' | cut -d' ' -f3))"
    fi
    local nvcc sanitizer
    nvcc=$(cuda_bin nvcc)
    sanitizer=$(cuda_bin compute-sanitizer)
    if [ -n "$nvcc" ]; then run_logged 20 "$nvcc" --version; fi
    run_logged 20 gcc --version
    run_logged 20 make --version
    if [ -n "$sanitizer" ]; then run_logged 20 "$sanitizer" --version; fi
    { echo "glibc: $(getconf GNU_LIBC_VERSION)"; uname -a; echo "cores: $cores"; free -g; df -h .; } >> "$log" 2>&1
    python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' \
        >> "$log" 2>&1 || echo "python3 has no torch" >> "$log"
    local toolkit
    toolkit=$([ -n "$nvcc" ] && "$nvcc" --version | grep -oE 'release [0-9.]+' | cut -d' ' -f2)
    figures="${figures:+$figures; }nvcc ${toolkit:-missing}; compute-sanitizer ${sanitizer:+found}${sanitizer:-missing}; $cores cores; $(getconf GNU_LIBC_VERSION)"
    say "$figures"
    [ -n "$nvcc" ]
}

# The system's libraries when it has all five; else the bundle, unpacked into build/gpu-bundle.
step_deps() {
    local missing=() p
    if command -v pkg-config >/dev/null; then
        for p in "${HOST_PKGS[@]}"; do pkg-config --exists "$p" || missing+=("$p"); done
    else
        missing+=(pkg-config "${HOST_PKGS[@]}")
    fi
    [ -f /usr/include/libstemmer.h ] || missing+=(libstemmer)
    if [ ${#missing[@]} -eq 0 ]; then
        figures="the system has HDF5, cJSON, OpenBLAS, LAPACKE and libstemmer"
        say "$figures"
        return 0
    fi
    say "the system lacks: ${missing[*]}"
    if [ ! -f "$BUNDLE" ]; then
        figures="the system lacks ${missing[*]}, and there is no $BUNDLE (make gpu-bundle on a machine that has them, and carry it)"
        say "$figures"
        return 1
    fi
    rm -rf build/gpu-bundle
    if command -v xz >/dev/null; then
        run_logged 60 tar -C build -xJf "$BUNDLE" || { figures="could not unpack $BUNDLE"; return 1; }
    else
        run_logged 60 python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$BUNDLE" build \
            || { figures="could not unpack $BUNDLE (no xz, and python3 could not)"; return 1; }
    fi
    cat build/gpu-bundle/MANIFEST >> "$log"
    local need have
    need=$(sed -n 's/^glibc: //p' build/gpu-bundle/MANIFEST)
    have=$(getconf GNU_LIBC_VERSION | cut -d' ' -f2)
    if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -n 1)" != "$need" ]; then
        figures="the bundle needs glibc >= $need, this machine has $have"
        say "$figures"
        return 1
    fi
    make_args+=(DEPS_PREFIX=build/gpu-bundle)
    figures="the system lacks ${missing[*]}: using $BUNDLE ($(du -k "$BUNDLE" | cut -f1) KiB; glibc $need <= $have)"
    say "$figures"
}

step_build() {
    run_logged "$(limit_of build)" make -j"$cores" "${make_args[@]}" gpu-session-programs
    local rc=$?
    figures="$(grep -m 1 '^tipcap:' "$log"); -j$cores"
    [ "$(outcome $rc)" = "timed out" ] && figures="timed out; $figures"
    [ $rc -eq 0 ] || figures="failed: $(grep -m 1 -E 'error|Error' "$log"); $figures"
    return $rc
}

# ldd of every program the later steps run: each library found, and where the five come from.
step_libs() {
    local progs=() p unresolved=0 from=
    for p in bin/tipcap-* bin/bench/* build/tests-gpu/*; do [ -x "$p" ] && progs+=("$p"); done
    for p in "${progs[@]}"; do
        echo "== $p" >> "$log"
        ldd "$p" >> "$log" 2>&1
        if ldd "$p" | grep -q 'not found'; then
            say "$p: $(ldd "$p" | grep 'not found' | awk '{print $1}' | tr '\n' ' ')not found"
            unresolved=$((unresolved + 1))
        fi
    done
    from=$(ldd bin/tipcap-train 2>/dev/null | grep -E 'lib(hdf5|cjson|openblas|lapacke)' | awk '{print $3}' | xargs -r -n 1 dirname | sort -u | tr '\n' ' ')
    figures="${#progs[@]} programs, $unresolved with a library not found; HDF5, cJSON, OpenBLAS, LAPACKE from ${from:-?}"
    # make relinks nothing when only DEPS_PREFIX changed: programs carried from another machine keep its paths
    [ $unresolved -eq 0 ] || say "programs linked on another machine? rm -rf bin build/tests-gpu, and run again"
    [ $unresolved -eq 0 ] && [ -x bin/tipcap-train ]
}

step_test_gpu() {
    if [ "$dry_run" = 1 ]; then
        would_run make "${make_args[@]}" test-gpu-run "(TIPCAP_REQUIRE_GPU=1 tests/run.sh on build/tests-gpu/*)"
        return 0
    fi
    # test-gpu-run: make test-gpu (TIPCAP_REQUIRE_GPU=1) without its install-deps step, which needs the network
    run_logged "$(limit_of test-gpu)" make "${make_args[@]}" test-gpu-run
    local rc=$?
    figures="$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)"
    [ "$(outcome $rc)" = "timed out" ] && figures="timed out; $figures"
    local fails
    fails=$(grep -E '^FAIL ' "$log" | head -n 5 | cut -c6- | tr '\n' ';')
    [ -z "$fails" ] || figures="$figures; failed: $fails"
    return $rc
}

# The four tools on the four tests at once, up to half the cores in parallel, each in its own log.
sanitize_one() {  # tool test limit
    local tool=$1 t=$2 secs=$3 sublog=$out/sanitizers/$1-$2.log
    TIPCAP_TEST_SMALL=1 TIPCAP_REQUIRE_GPU=1 OMP_NUM_THREADS=2 timeout --kill-after=10 "$secs" \
        "$(cuda_bin compute-sanitizer)" --tool "$tool" --error-exitcode 86 --target-processes all "build/tests-gpu/$t" \
        > "$sublog" 2>&1
    echo $? > "$sublog.rc"
}
step_sanitizers() {
    local tool t
    if [ "$dry_run" = 1 ]; then
        for tool in "${SANITIZER_TOOLS[@]}"; do
            for t in "${SANITIZER_TESTS[@]}"; do
                would_run "TIPCAP_TEST_SMALL=1 TIPCAP_REQUIRE_GPU=1 compute-sanitizer --tool $tool --error-exitcode 86" \
                    "--target-processes all build/tests-gpu/$t > $out/sanitizers/$tool-$t.log"
            done
        done
        return 0
    fi
    [ -n "$(cuda_bin compute-sanitizer)" ] || { figures="compute-sanitizer not found"; say "$figures"; return 1; }
    mkdir -p "$out/sanitizers"
    local parallel=$((cores / 2 > 0 ? cores / 2 : 1)) n=$((${#SANITIZER_TOOLS[@]} * ${#SANITIZER_TESTS[@]}))
    local waves=$(((n + parallel - 1) / parallel)) secs
    secs=$(($(limit_of sanitizers) / waves))
    say "$n runs, $parallel at a time, each at most $secs s; logs in $out/sanitizers/"
    for tool in "${SANITIZER_TOOLS[@]}"; do
        for t in "${SANITIZER_TESTS[@]}"; do
            while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do wait -n; done
            sanitize_one "$tool" "$t" "$secs" &
        done
    done
    wait
    local bad=0 rc summary
    for tool in "${SANITIZER_TOOLS[@]}"; do
        local clean=0 notes=
        for t in "${SANITIZER_TESTS[@]}"; do
            rc=$(cat "$out/sanitizers/$tool-$t.log.rc")
            summary=$(grep -E '(ERROR|RACECHECK) SUMMARY' "$out/sanitizers/$tool-$t.log" | tail -n 1 | sed 's/^=* *//')
            say "$tool $t: exit $rc; ${summary:-no summary}; $(grep -E '^[0-9]+ passed' "$out/sanitizers/$tool-$t.log" | tail -n 1)"
            if [ "$rc" -eq 0 ]; then clean=$((clean + 1))
            else
                bad=1
                if [ "$rc" -eq 86 ]; then notes="$notes $t ($summary)"; else notes="$notes $t ($(outcome "$rc"))"; fi
            fi
        done
        figures="${figures:+$figures; }$tool $clean/${#SANITIZER_TESTS[@]} clean${notes:+:$notes}"
    done
    return $bad
}

# One after the other, so that they do not share the GPU; each gets its share of the step's time.
step_benches() {
    local b rc bad=0 secs
    secs=$(($(limit_of benches) / ${#BENCHES[@]}))
    for b in "${BENCHES[@]}"; do
        if [ "$dry_run" = 1 ]; then
            would_run "bin/bench/$b (at most $secs s)"
            continue
        fi
        echo "== $b" >> "$log"
        run_logged "$secs" "bin/bench/$b"
        rc=$?
        [ $rc -eq 0 ] || bad=1
        figures="${figures:+$figures, }$b $(outcome $rc)"
    done
    return $bad
}

step_bench_gpu() {
    if [ "$dry_run" = 1 ]; then
        would_run "PYTHONUNBUFFERED=1 bench/bench_gpu.sh (what is left of the budget)"
        return 0
    fi
    PYTHONUNBUFFERED=1 run_logged "$(limit_of bench-gpu)" bench/bench_gpu.sh
    local rc=$?
    figures=$(grep -E '^(tipcap-train|pytorch|tipcap / Hugging Face)|captions in' "$log" | sed 's/^\[tipcap\] info: //' | tr '\n' ';')
    [ "$(outcome $rc)" = "timed out" ] && figures="timed out; $figures"
    return $rc
}

# ---------------------------------------------------------------- the session

summary=$out/summary.txt
printf '%-11s %-8s %7s  %s\n' step status seconds figures > "$summary"
all_passed=1
n=0
for step in "${ALL_STEPS[@]}"; do
    n=$((n + 1))
    [ "$step" = env ] || [[ ",$steps," == *",$step,"* ]] || continue
    log=$out/$(printf '%02d' $n)-$step.log
    : > "$log"
    figures=
    dry_commands=0
    t0=$SECONDS
    if [ "$(left)" -le 5 ]; then
        status="no time"
        all_passed=0
    elif "step_${step//-/_}"; then
        status=pass
        [ "$dry_commands" -eq 0 ] || status=dry-run
    else
        status=FAIL
        all_passed=0
    fi
    printf '%-11s %-8s %7d  %s\n' "$step" "$status" $((SECONDS - t0)) "$figures" >> "$summary"
    echo "gpu-session: $step: $status ($((SECONDS - t0)) s)${figures:+: $figures}"
    if [ "$step" = env ] && [ "$status" = FAIL ]; then break; fi  # no GPU or no toolkit: nothing else can run
done
echo "total: $((SECONDS - start)) s of $budget; $([ $all_passed = 1 ] && echo "every step passed" || echo "some steps did not pass")" >> "$summary"
echo
cat "$summary"
[ $all_passed = 1 ]
