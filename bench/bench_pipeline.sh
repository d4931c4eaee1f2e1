#!/usr/bin/env bash
# Speed of the whole pipeline's programs on this machine (CPU, or the GPU when tipcap uses one):
# training tokens/s of a config (default the demo's), and captions/s of tipcap-infer at beam 1, 3
# and 5. Simulated features (tipcap-synth), so it needs nothing but the repository.
# usage: bench/bench_pipeline.sh [CONFIG] [STEPS]     (from the repository root, after make)
set -euo pipefail
cfg=${1:-configs/demo/paired.json}
steps=${2:-200}
dir=$(mktemp -d /tmp/tipcap_bench_XXXXXX)
trap 'rm -rf "$dir"' EXIT
bin/tipcap-synth --captions data/captions/coco_karpathy_val.json --out "$dir/train.h5" --seed 1234 > /dev/null
bin/tipcap-synth --captions data/captions/coco_karpathy_test.json --out "$dir/test.h5" --seed 1234 --max-images 1000 > /dev/null
bin/tipcap-prep gap --setting paired --features "$dir/train.h5" --pairs 500 --out "$dir/gap.h5" > /dev/null
bin/tipcap-train --config "$cfg" --set run.dir="$dir/run" --set data.features="$dir/train.h5" \
    --set mapping.setting=paired --set mapping.gap="$dir/gap.h5" --set train.steps="$steps" --set train.log_every=10 \
    --set train.checkpoint_every="$steps" 2> "$dir/train.log"
# steady state: from the row at step 20 to the last, positions (B x (K + L)) and target tokens per second
awk -F, -v cfg="$cfg" 'NR > 1 { step[NR] = $1; t[NR] = $8; n = NR } $1 == 20 { s0 = $1; t0 = $8 }
    END { dt = t[n] - t0; printf "train %s: %d steps in %.1f s from step 20: %.2f steps/s\n", cfg, step[n] - s0, dt, (step[n] - s0) / dt }' \
    "$dir/run/metrics.csv"
grep -E "training captions|parameters" "$dir/train.log" | sed 's/^\[tipcap\] info: /  /'
grep -E "tok/s" "$dir/train.log" | tail -n 5 | awk '{ for (i = 1; i <= NF; i++) if ($i == "tok/s") s += $(i - 1) } END { printf "  target tokens/s (last 5 log lines): %.0f\n", s / 5 }'
for beam in 1 3 5; do
    bin/tipcap-infer --checkpoint "$dir/run" --features "$dir/test.h5" --out "$dir/r.json" --beam "$beam" --prompts auto 2>&1 \
        | grep -E "captions in" | sed "s/^\[tipcap\] info: /infer beam $beam: /"
done
