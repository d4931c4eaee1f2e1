#!/usr/bin/env bash
# tipcap-eval against pycocoevalcap on the COCO Karpathy test set (5,000 images x 5 references,
# the visual_entities predictions): all metrics but SPICE, timed in one run on the same input.
# usage: bench/bench_eval.sh [REPEATS]   (needs pycocoevalcap and Java for the comparison)
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
make --no-print-directory bin/tipcap-eval >/dev/null
refs=tests/data/eval/coco_karpathy_test.json
res=tests/data/eval/visual_entities_coco_results.json
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
best=""
walls=()
for i in $(seq "$repeats"); do
    t=$( { /usr/bin/time -f "%e %U %S" bin/tipcap-eval --refs "$refs" --results "$res" --metrics bleu,meteor,rouge,cider \
           --threads 2 >/dev/null; } 2>&1 | tail -1)
    echo "tipcap-eval run $i: wall ${t%% *} s (CPU user+sys $(echo "$t" | awk '{print $2 + $3}') s)"
    w=${t%% *}
    walls+=("$w")
    c=$(echo "$t" | awk '{print $2 + $3}')
    if [ -z "$best" ] || awk "BEGIN{exit !($w < $best)}"; then best=$w; fi
    if [ -z "${best_cpu:-}" ] || awk "BEGIN{exit !($c < $best_cpu)}"; then best_cpu=$c; fi
done
median=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
echo "tipcap-eval best: wall $best s, CPU $best_cpu s; median wall $median s"
if python3 -c 'import pycocoevalcap.bleu.bleu' 2>/dev/null && command -v java >/dev/null; then
    py=$(REFS=$refs RES=$res python3 - <<'PY'
import json, os, resource, time
t0 = time.time()
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.cider.cider import Cider
refs = json.load(open(os.environ["REFS"]))
res = {r["image_id"]: r["caption"] for r in json.load(open(os.environ["RES"]))}
gts = {k: [{"caption": c} for c in v] for k, v in refs.items()}
rs = {k: [{"caption": res[k]}] for k in refs}
tok = PTBTokenizer()
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    g, r = tok.tokenize(gts), tok.tokenize(rs)
    Bleu(4).compute_score(g, r, verbose=0)
    m = Meteor().compute_score(g, r)[0]
    Rouge().compute_score(g, r)
    Cider().compute_score(g, r)
ru_self, ru_kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru_self.ru_utime + ru_self.ru_stime + ru_kids.ru_utime + ru_kids.ru_stime
print("%.2f %.2f" % (time.time() - t0, cpu))
PY
)
    py_wall=${py%% *}
    py_cpu=${py##* }
    echo "pycocoevalcap (PTB tokenizer, Bleu, Meteor, Rouge, Cider; Python start included): wall $py_wall s, CPU $py_cpu s (its Java processes included)"
    echo "ratio: pycocoevalcap / tipcap-eval = $(awk "BEGIN{printf \"%.1f\", $py_wall / $best}") (wall, best), $(awk "BEGIN{printf \"%.1f\", $py_wall / $median}") (wall, median), $(awk "BEGIN{printf \"%.1f\", $py_cpu / $best_cpu}") (CPU)"
else
    echo "pycocoevalcap or Java missing: no comparison (pip install pycocoevalcap)"
fi
