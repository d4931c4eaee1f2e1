#!/usr/bin/env bash
# Installs what tipcap's build and tests need on Debian or Ubuntu; idempotent.
#   scripts/install-deps.sh           install whatever is missing (apt-get as root, else print the command)
#   scripts/install-deps.sh --check   only report; exit 1 if something is missing
#   scripts/install-deps.sh --python  also pip-install the Python test oracles (numpy, h5py, safetensors, wheel)
# Also fetches METEOR's paraphrase table into data/meteor/ (from the pinned pycocoevalcap wheel on
# PyPI, checked against data/meteor/paraphrase-en.gz.sha256). `make test` and `make demo` run it.
set -u
mode=install
python_oracles=0
for arg in "$@"; do
    case "$arg" in
        --check) mode=check ;;
        --python) python_oracles=1 ;;
        -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
        *) echo "install-deps.sh: unknown option $arg" >&2; exit 2 ;;
    esac
done

missing=()
need_pkg() { # pkg-config name, Debian package
    pkg-config --exists "$1" 2>/dev/null || missing+=("$2")
}
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v gcc >/dev/null && command -v g++ >/dev/null && command -v make >/dev/null || missing+=(build-essential)
need_pkg hdf5 libhdf5-dev
need_pkg libcjson libcjson-dev
need_pkg openblas libopenblas-dev
need_pkg lapacke liblapacke-dev
[ -f /usr/include/libstemmer.h ] || missing+=(libstemmer-dev)
command -v mpicc >/dev/null && command -v mpirun >/dev/null || missing+=(libopenmpi-dev openmpi-bin)
# the sweep test runs a one-node Slurm (scripts/slurm-local.sh); the sweep scripts are Python 3
command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null || missing+=(slurmctld slurmd slurm-client)
command -v munged >/dev/null || missing+=(munge)
command -v python3 >/dev/null || missing+=(python3)

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}"
    if [ "$mode" = check ]; then exit 1; fi
    cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=""
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo"
    else
        echo "install-deps: run as root: apt-get update && $cmd" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
        $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    } || { echo "install-deps: apt-get failed" >&2; exit 1; }
    echo "install-deps: installed ${missing[*]}"
fi

# cudnn-frontend (header-only C++, MIT) for the optional cuDNN attention (kernels/attention_cudnn.h):
# its headers from the pinned PyPI wheel into /usr/local/include, when nvcc and cuDNN are there
cuda_home=$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /usr/local/cuda/bin/nvcc)")")
if [ -x "$cuda_home/bin/nvcc" ] && { [ -f "$cuda_home/include/cudnn.h" ] || [ -f /usr/include/cudnn.h ]; } \
    && [ ! -f /usr/local/include/cudnn_frontend.h ] && [ "$mode" = install ] && [ "$(id -u)" -eq 0 ]; then
    tmp=$(mktemp -d)
    if python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$tmp" nvidia-cudnn-frontend==1.32.0 >/dev/null 2>&1 \
        && python3 -m zipfile -e "$tmp"/nvidia_cudnn_frontend-*.whl "$tmp/wheel" \
        && cp -r "$tmp/wheel/include/." /usr/local/include/; then
        echo "install-deps: installed the cudnn-frontend 1.32.0 headers into /usr/local/include"
    else
        echo "install-deps: could not fetch cudnn-frontend; the optional cuDNN attention will not be built"
    fi
    rm -rf "$tmp"
fi

# METEOR's paraphrase table (paraphrase-en.gz, 61 MB, LGPL-2.1) is not in git: it comes from the
# pycocoevalcap wheel (pip download only, nothing installed) and must match the pinned checksum.
meteor_dir="$(cd "$(dirname "$0")/.." && pwd)/data/meteor"
meteor_table="$meteor_dir/paraphrase-en.gz"
table_ok() { (cd "$meteor_dir" && sha256sum --check --status paraphrase-en.gz.sha256 2>/dev/null); }
if ! table_ok; then
    if [ "$mode" = check ]; then
        echo "install-deps: $meteor_table missing or not the pinned one (METEOR would run without paraphrases)"
        exit 1
    fi
    tmp=$(mktemp -d)
    if python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            -d "$tmp" pycocoevalcap==1.2 >/dev/null 2>&1 \
        && python3 -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("pycocoevalcap/meteor/data/paraphrase-en.gz"))' \
            "$tmp"/pycocoevalcap-1.2-py3-none-any.whl "$tmp/paraphrase-en.gz" \
        && (cd "$tmp" && sha256sum --check --status "$meteor_dir/paraphrase-en.gz.sha256"); then
        mv "$tmp/paraphrase-en.gz" "$meteor_table.tmp" && mv "$meteor_table.tmp" "$meteor_table"
        echo "install-deps: fetched METEOR's paraphrase table into $meteor_table (checksum verified)"
    else
        echo "install-deps: could not fetch METEOR's paraphrase table (pycocoevalcap 1.2 from PyPI, or its checksum failed);" \
             "tipcap-eval's METEOR runs without paraphrases and says so" >&2
    fi
    rm -rf "$tmp"
fi

if [ "$python_oracles" = 1 ] && command -v python3 >/dev/null; then
    # wheel: tests/test_eval_python.py builds tipcap_eval's wheel without fetching build tools
    if ! python3 -c 'import numpy, h5py, safetensors, wheel' 2>/dev/null; then
        echo "install-deps: pip-installing the Python test oracles and tools (numpy, h5py, safetensors, wheel)"
        python3 -m pip install --quiet --disable-pip-version-check numpy h5py safetensors wheel \
            || echo "install-deps: pip failed; tests that need these oracles will be skipped"
    fi
fi
exit 0
