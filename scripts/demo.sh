#!/usr/bin/env bash
# make demo: the whole tipcap pipeline on one machine, CPU or GPU, in one run directory.
#   1. simulated CLIP features (tipcap-synth) of the shipped COCO Karpathy val captions (training)
#      and test captions (held-out images)
#   2. the modality gap per data setting (tipcap-prep gap): 500 clean pairs; 5,000 web pairs of which
#      30% are mismatched on purpose; unpaired images and captions; none (text only)
#   3. one small model per setting (configs/demo/*.json), plus the CapDec-style baseline
#      (isotropic noise, no prompts)
#   4. captions for the held-out images (tipcap-infer, beam 3, automatic entity prompts)
#   5. scores (tipcap-eval) and the table in the paper's layout, and the loss curves in one image
# Environment: DEMO_DIR (default runs/demo), DEMO_STEPS (training steps per model, default 400),
# DEMO_TEST_IMAGES (default 500). A second demo in the same DEMO_DIR replaces the first.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DEMO_DIR:-runs/demo}
steps=${DEMO_STEPS:-400}
test_images=${DEMO_TEST_IMAGES:-500}
start=$(date +%s)
say() { echo "[demo $(( $(date +%s) - start ))s] $*"; }
if [ -d "$dir/runs" ]; then  # the models of an earlier demo: trained again from scratch
    say "replacing the earlier demo in $dir"
    rm -rf "$dir/runs"
fi
mkdir -p "$dir"/{features,gaps,runs,results,scores}
log="$dir/demo.log"
: > "$log"
run() { "$@" >> "$log" 2>&1 || { echo "demo: failed: $* (see $log)"; tail -n 20 "$log"; exit 1; }; }

cat <<NOTE
tipcap demo. The CLIP features are SIMULATED by tipcap-synth (a CLIP-like model of real COCO
captions, with a known anisotropic image-text gap): the table shows the pipeline and the relative
effect of modelling the gap, not the paper's numbers. Real data: docs/GUIDE.md and scripts/reproduce.
Everything goes to $dir (log: $log).
NOTE

say "simulating features: COCO Karpathy val captions (training), $test_images test images (held out)"
run bin/tipcap-synth --captions data/captions/coco_karpathy_val.json --out "$dir/features/train.h5" --seed 1234
run bin/tipcap-synth --captions data/captions/coco_karpathy_test.json --out "$dir/features/test.h5" --seed 1234 \
    --max-images "$test_images"

say "estimating the modality gap: paired (500 clean pairs), web (5,000 pairs, 30% mismatched), unpaired"
run bin/tipcap-prep gap --setting paired --features "$dir/features/train.h5" --pairs 500 --seed 1 --out "$dir/gaps/paired.h5"
run bin/tipcap-prep gap --setting web --features "$dir/features/train.h5" --pairs 5000 --mismatch 0.3 --seed 1 \
    --out "$dir/gaps/web.h5"
run bin/tipcap-prep gap --setting unpaired --features "$dir/features/train.h5" --seed 1 --out "$dir/gaps/unpaired.h5"
grep -E "^gap: (web|paired|unpaired).*(rejected|pairs)" "$log" | sed 's/^/    /' || true

settings="capdec textonly unpaired web paired"
for s in $settings; do
    say "training $s ($steps steps)"
    run bin/tipcap-train --config "configs/demo/$s.json" --set "run.dir=$dir/runs/$s" --set "train.steps=$steps" \
        --set "data.features=$dir/features/train.h5" \
        $(case $s in unpaired|web|paired) echo "--set mapping.gap=$dir/gaps/$s.h5";; esac)
done

caption() { # name run prompts
    run bin/tipcap-infer --checkpoint "$dir/runs/$2" --features "$dir/features/test.h5" --out "$dir/results/$1.json" \
        --beam 3 --prompts "$3"
    bin/tipcap-eval --refs data/captions/coco_karpathy_test.json --results "$dir/results/$1.json" \
        --json "$dir/scores/$1.json" > "$dir/scores/$1.txt" 2>> "$log" || { echo "demo: tipcap-eval failed (see $log)"; exit 1; }
}
say "captioning $test_images held-out images and scoring"
caption capdec capdec none
for s in textonly unpaired web paired; do caption "$s" "$s" auto; done
caption paired_no_prompts paired none

run bin/tipcap-train --plot "$dir/loss.svg" $(for s in $settings; do echo "$dir/runs/$s"; done)

score() { awk -v k="$2:" '$1 == k { printf "%.1f", 100 * $2 }' "$dir/scores/$1.txt"; }
spice_key=$(grep -q '^SPICE:' "$dir/scores/paired.txt" && echo SPICE || echo SPICE-approx)
# METEOR without its paraphrase table (install-deps could not fetch it) is a different number: say so
meteor_head=METEOR
if grep -q '^METEOR: .*without the paraphrase module' "$dir"/scores/*.txt; then meteor_head="METEOR (without paraphrases)"; fi
{
    echo "| method | B@4 | $meteor_head | ROUGE-L | CIDEr | $spice_key |"
    echo "| --- | --- | --- | --- | --- | --- |"
    row() { echo "| $1 | $(score "$2" Bleu_4) | $(score "$2" METEOR) | $(score "$2" ROUGE_L) | $(score "$2" CIDEr) | $(score "$2" "$spice_key") |"; }
    row "CapDec-style baseline (isotropic noise, no prompts)" capdec
    row "TIPCap text-only (learnable Gaussian)" textonly
    row "TIPCap unpaired images and texts" unpaired
    row "TIPCap noisy web pairs (30% mismatched)" web
    row "TIPCap few clean pairs (500)" paired
    row "TIPCap few clean pairs, without prompts" paired_no_prompts
} > "$dir/table.md"
echo
echo "Simulated COCO test images ($test_images), scores x100 (simulated CLIP features: not paper numbers):"
echo
cat "$dir/table.md"
echo
echo "loss curves: $dir/loss.svg; captions: $dir/results/; full scores: $dir/scores/"
say "done"
