#!/usr/bin/env bash
# Captions/s of tipcap-infer against Hugging Face generate on the same checkpoint, images and
# options, in one run (issue 7): the COCO Karpathy test images (5,000; features simulated by
# tipcap-synth unless --features is given), beam 5, no prompts. The other side is
# bench/tipcap_torch.py (the model in PyTorch, the decoder transformers' GPT2LMHeadModel, generate
# with the same stopping rule). Prints both rates, their ratio and how many captions agree. On a
# GPU both run in bf16; on the CPU in fp32.
# usage: bench/bench_generate.sh --checkpoint RUN [--features F.h5] [--device cpu|cuda] [--beam 5]
#                                [--batch 32] [--limit N]        (from the repository root, after make)
# needs: python3 with torch, transformers, h5py, safetensors (make check-torch-oracle's venv will do:
#        PATH=~/.cache/tipcap/torch-venv/bin:$PATH bench/bench_generate.sh ...)
set -euo pipefail
checkpoint="" features="" device=cpu beam=5 batch=32 limit=""
while [ $# -gt 0 ]; do
    case "$1" in
        --checkpoint) checkpoint=$2; shift 2 ;;
        --features) features=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --beam) beam=$2; shift 2 ;;
        --batch) batch=$2; shift 2 ;;
        --limit) limit=$2; shift 2 ;;
        -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
        *) echo "bench_generate: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$checkpoint" ] || { echo "bench_generate: --checkpoint RUN is required" >&2; exit 2; }
python3 -c 'import torch, transformers, h5py, safetensors' 2>/dev/null \
    || { echo "bench_generate: python3 needs torch, transformers, h5py and safetensors" >&2; exit 1; }
dir=$(mktemp -d /tmp/tipcap_bench_generate_XXXXXX)
trap 'rm -rf "$dir"' EXIT
if [ -z "$features" ]; then
    dim=$(python3 bench/tipcap_torch.py config --checkpoint "$checkpoint" --key clip_dim)
    features=$dir/test.h5
    bin/tipcap-synth --captions data/captions/coco_karpathy_test.json --out "$features" --dim "$dim" --seed 1234 --no-vocab > /dev/null
fi
precision=fp32
[ "$device" = cuda ] && precision=bf16
common=(--checkpoint "$checkpoint" --features "$features" --beam "$beam" --batch "$batch" ${limit:+--limit "$limit"})
bin/tipcap-infer "${common[@]}" --device "$device" --precision "$precision" --out "$dir/tipcap.json" 2> "$dir/tipcap.log" \
    || { cat "$dir/tipcap.log" >&2; exit 1; }
ours=$(grep -E "captions in" "$dir/tipcap.log" | sed 's/^\[tipcap\] info: //')
theirs=$(python3 bench/tipcap_torch.py caption "${common[@]}" --device "$device" --dtype "$precision" --out "$dir/hf.json" 2> "$dir/hf.log") \
    || { cat "$dir/hf.log" >&2; exit 1; }
echo "tipcap-infer:            $ours"
echo "Hugging Face generate:   $theirs"
python3 - "$dir/tipcap.json" "$dir/hf.json" "$ours" "$theirs" <<'PY'
import json, re, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rate = lambda s: float(re.search(r"\(([0-9.]+) images/s", s).group(1))
same = sum(x["caption"] == y["caption"] for x, y in zip(a, b))
print(f"tipcap / Hugging Face:   {rate(sys.argv[3]) / rate(sys.argv[4]):.2f}x; {same} of {len(a)} captions identical")
PY
