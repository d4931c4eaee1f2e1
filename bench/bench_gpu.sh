#!/usr/bin/env bash
# GPU benchmarks of the model programs (issues 6 and 7), one run on one GPU:
#   training: GPT-2 124M decoder, K = 10 prefix tokens, captions of 40 tokens, batch 256, bf16;
#             tipcap-train's steps/s and tokens/s (decoder positions), MFU against the GPU's dense
#             bf16 peak (PEAK_TFLOPS, default 989 for an H100 SXM), and the same model in PyTorch
#             (bench/pytorch_tipcap.py: eager and torch.compile) when torch and transformers exist
#   captions: the trained checkpoint on 5,000 images (simulated COCO test features), beam 5, bf16:
#             tipcap-infer's captions/s against Hugging Face generate on the same checkpoint
#             (bench/bench_generate.sh), when torch and transformers exist
# usage: bench/bench_gpu.sh        (after make; results go to bench/RESULTS.md by hand)
#        PATH=~/.cache/tipcap/torch-venv/bin:$PATH bench/bench_gpu.sh   (with make check-torch-oracle's venv)
set -euo pipefail
nvidia-smi -L >/dev/null 2>&1 || { echo "bench_gpu: no GPU" >&2; exit 1; }
dir=$(mktemp -d /tmp/tipcap_gpu_bench_XXXXXX)
trap 'rm -rf "$dir"' EXIT
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
bin/tipcap-synth --captions data/captions/coco_karpathy_val.json --out "$dir/train.h5" --seed 1 > /dev/null
bin/tipcap-synth --captions data/captions/coco_karpathy_test.json --out "$dir/test.h5" --seed 1 > /dev/null
steps=${STEPS:-60}
bin/tipcap-train --config configs/coco/capdec.json --set run.dir="$dir/run" --set run.device=cuda \
    --set data.corpus=data/captions/coco_karpathy_val.json --set data.features="$dir/train.h5" \
    --set data.val_features= --set data.val_split=none --set data.max_len=40 --set model.decoder_init= \
    --set model.map_layers=0 --set model.max_prompts=8 --set model.max_len=50 --set train.batch_size=256 \
    --set train.steps="$steps" --set train.log_every=5 --set train.checkpoint_every="$steps" 2> "$dir/train.log"
params=$(grep -oE "[0-9.]+M parameters" "$dir/train.log" | grep -oE "[0-9.]+")
awk -F, -v p="$params" -v peak="${PEAK_TFLOPS:-989}" 'NR > 1 { s[NR] = $1; t[NR] = $8; n = NR } $1 == 20 { s0 = $1; t0 = $8 }
    END { sps = (s[n] - s0) / (t[n] - t0); tok = sps * 256 * 50;
          printf "tipcap-train: %.2f steps/s, %.0f tokens/s (B 256 x T 50), %.1fM parameters, MFU %.1f%% (6 N per token)\n",
                 sps, tok, p, 100 * 6 * p * 1e6 * tok / (peak * 1e12) }' "$dir/run/metrics.csv"
if python3 -c 'import torch, transformers, h5py, safetensors' 2>/dev/null; then
    python3 bench/pytorch_tipcap.py --batch 256 --prefix 10 --len 40
    bench/bench_generate.sh --checkpoint "$dir/run" --features "$dir/test.h5" --device cuda --beam 5 --batch 64
else
    echo "pytorch: not installed (make check-torch-oracle installs it in a venv) - no comparisons"
    bin/tipcap-infer --checkpoint "$dir/run" --features "$dir/test.h5" --out "$dir/r.json" --beam 5 --batch 64 --device cuda 2>&1 \
        | grep "captions in"
fi
