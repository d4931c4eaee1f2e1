#!/usr/bin/env python3
"""The Python package tipcap_eval (eval/setup.py): `pip wheel ./eval` builds a wheel, which is
installed into a scratch folder and checked from there: pycocoevalcap's modules, classes, return
types and printed lines; the toolkit's example flow (a COCO annotations file and a results file
through COCOEvalCap, with pycocotools' COCO when installed and a minimal stand-in always) gives the
golden numbers of tests/test_eval.c; with pycocoevalcap (and Java) installed, every scorer gives
its numbers on the fakecap set, image by image; Spice runs a SPICE jar (the stand-in in
tests/eval_spice_standin) when given one. Prints "N passed, N failed, N skipped" (tests/run.sh).
Skipped only where python3 lacks pip or setuptools."""
import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data", "eval")
# the parent (which built the wheel) hands its passed case to the child that runs the rest
counts = {"passed": int(os.environ.get("TIPCAP_TEST_PASSED_BEFORE", "0")), "failed": 0, "skipped": 0}


def case(fn):
    try:
        skip = fn()
    except Exception as e:  # a failed check or an error in the package
        counts["failed"] += 1
        print(f"FAIL {fn.__name__}\n  {type(e).__name__}: {e}")
        return
    if skip:
        counts["skipped"] += 1
        print(f"SKIP {fn.__name__}: {skip}")
    else:
        counts["passed"] += 1
        print(f"ok   {fn.__name__}")
    sys.stdout.flush()


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def same(a, b):
    return a == b or abs(a - b) <= 4e-16 * abs(b)


# the numbers of tests/test_eval.c (the toolkit's, docs/EVAL.md "Exactness")
VISUAL_ENTITIES = {"Bleu_1": 0.69007906967384893, "Bleu_2": 0.51057241195814930, "Bleu_3": 0.37115374476457652,
                   "Bleu_4": 0.26973539218062104, "METEOR": 0.24719778300714526, "ROUGE_L": 0.51125768630078694,
                   "CIDEr": 0.91906026506012128}
FAKECAP_PRINTED = {"Bleu_1": 0.579, "Bleu_2": 0.404, "Bleu_3": 0.279, "Bleu_4": 0.191, "METEOR": 0.195, "ROUGE_L": 0.396,
                   "CIDEr": 0.600}


class MiniCOCO:
    """What COCOEvalCap reads of pycocotools' COCO: getImgIds(), imgToAnns, loadRes()."""

    def __init__(self, annotation_file=None, dataset=None):
        self.dataset = dataset if dataset is not None else json.load(open(annotation_file))
        self.imgToAnns = {img["id"]: [] for img in self.dataset["images"]}
        for ann in self.dataset["annotations"]:
            self.imgToAnns[ann["image_id"]].append(ann)

    def getImgIds(self):
        return list(self.imgToAnns)

    def loadRes(self, results_file):
        anns = json.load(open(results_file))
        ids = {a["image_id"] for a in anns}
        images = [img for img in self.dataset["images"] if img["id"] in ids]
        return MiniCOCO(dataset={"images": images, "annotations": [dict(a, id=k + 1) for k, a in enumerate(anns)]})


def coco_files(tmp, refs, results, name):
    """A COCO annotations file and a results file, as the toolkit's example reads them."""
    images, annotations = [], []
    for image_id, captions in refs.items():
        images.append({"id": image_id})
        for c in captions:
            annotations.append({"image_id": image_id, "id": len(annotations) + 1, "caption": c})
    ann_path, res_path = os.path.join(tmp, name + "_annotations.json"), os.path.join(tmp, name + "_results.json")
    json.dump({"info": {}, "licenses": [], "type": "captions", "images": images, "annotations": annotations}, open(ann_path, "w"))
    json.dump(results, open(res_path, "w"))
    return ann_path, res_path


def example_flow(COCO, ann_path, res_path):
    """pycocoevalcap's example/coco_eval_example.py with the imports changed."""
    from tipcap_eval.eval import COCOEvalCap
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        coco = COCO(ann_path)
        coco_result = coco.loadRes(res_path)
        coco_eval = COCOEvalCap(coco, coco_result)
        coco_eval.params["image_id"] = coco_result.getImgIds()
        coco_eval.evaluate()
    return coco_eval, out.getvalue()


def cocos():
    found = [("a minimal COCO", MiniCOCO)]
    if importlib.util.find_spec("pycocotools"):
        from pycocotools.coco import COCO
        found.append(("pycocotools' COCO", COCO))
    return found


def checks(tmp):
    def test_api_like_pycocoevalcap():
        import numpy as np
        from tipcap_eval.bleu.bleu import Bleu
        from tipcap_eval.cider.cider import Cider
        from tipcap_eval.eval import COCOEvalCap  # noqa: F401
        from tipcap_eval.meteor.meteor import Meteor
        from tipcap_eval.rouge.rouge import Rouge
        from tipcap_eval.spice.spice import Spice
        from tipcap_eval.tokenizer.ptbtokenizer import PTBTokenizer
        check(tipcap_eval_path().startswith(tmp), "tipcap_eval imported from %s, not the installed wheel" % tipcap_eval_path())
        gts = PTBTokenizer().tokenize({1: [{"caption": "A dog runs, on the grass."}, {"caption": "The dog's running."}],
                                       7: [{"caption": "Two cats (sleeping)."}]})
        res = PTBTokenizer().tokenize({1: [{"caption": "A dog on grass."}], 7: [{"caption": "cats sleep"}]})
        check(gts == {1: ["a dog runs on the grass", "the dog 's running"], 7: ["two cats -lrb- sleeping -rrb-"]}, repr(gts))
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            score, scores = Bleu(4).compute_score(gts, res)
        check(printed.getvalue().startswith("{'testlen': 6, 'reflen': ") and "\nratio: " in printed.getvalue(), printed.getvalue())
        check(type(score) is list and len(score) == 4 and all(type(s) is float for s in score), repr(score))
        check(type(scores) is list and len(scores) == 4 and all(type(s) is list and len(s) == 2 for s in scores), repr(scores))
        b2, s2 = Bleu(2).compute_score(gts, res, verbose=0)
        check(b2 == score[:2] and s2 == scores[:2], "Bleu(2) is not Bleu(4) cut at 2")
        m, ms = Meteor().compute_score(gts, res)
        check(type(m) is float and type(ms) is list and len(ms) == 2, repr((m, ms)))
        for scorer in (Rouge(), Cider()):
            s, per = scorer.compute_score(gts, res)
            check(isinstance(s, np.float64) and isinstance(per, np.ndarray) and per.shape == (2,), repr((s, per)))
        s, per = Spice().compute_score(gts, res)
        check(isinstance(s, np.float64) and type(per) is list and set(per[0]["All"]) == {"f"}, repr((s, per)))
        check([c.method() for c in (Bleu(), Meteor(), Rouge(), Cider(), Spice())] == ["Bleu", "METEOR", "Rouge", "CIDEr", "SPICE-approx"],
              "method() names")

    def test_example_flow_golden():
        refs = json.load(open(os.path.join(DATA, "coco_karpathy_test.json")))
        results = json.load(open(os.path.join(DATA, "visual_entities_coco_results.json")))
        ann_path, res_path = coco_files(tmp, refs, results, "coco_test")
        for name, COCO in cocos():
            ev, printed = example_flow(COCO, ann_path, res_path)
            for m, want in VISUAL_ENTITIES.items():
                check(same(ev.eval[m], want), "%s: %s %.17g, the toolkit's %.17g" % (name, m, ev.eval[m], want))
            check("SPICE-approx" in ev.eval and "SPICE" not in ev.eval, "%s: SPICE-approx not labelled so: %s" % (name, list(ev.eval)))
            check(len(ev.imgToEval) == 5000 and len(ev.evalImgs) == 5000, "%s: %d per-image rows" % (name, len(ev.imgToEval)))
            first = next(iter(refs))
            check(ev.imgToEval[first]["image_id"] == first and set(ev.imgToEval[first]) >= set(VISUAL_ENTITIES), repr(ev.imgToEval[first]))
            check("METEOR: 0.247\n" in printed and "CIDEr: 0.919\n" in printed, printed[-400:])

    def test_example_flow_fakecap():
        refs = {}
        for a in json.load(open(os.path.join(DATA, "fakecap_refs.json")))["annotations"]:
            refs.setdefault(a["image_id"], []).append(a["caption"])
        ann_path, res_path = coco_files(tmp, refs, json.load(open(os.path.join(DATA, "fakecap_results.json"))), "fakecap")
        for name, COCO in cocos():
            ev, _ = example_flow(COCO, ann_path, res_path)
            for m, want in FAKECAP_PRINTED.items():
                check(abs(round(ev.eval[m], 3) - want) < 1e-9, "%s: %s %.6f, the toolkit prints %.3f" % (name, m, ev.eval[m], want))

    def test_same_as_pycocoevalcap():
        if not importlib.util.find_spec("pycocoevalcap") or not shutil.which("java"):
            return "pycocoevalcap or Java not installed (pip install pycocoevalcap)"
        from pycocoevalcap.bleu.bleu import Bleu as PBleu
        from pycocoevalcap.cider.cider import Cider as PCider
        from pycocoevalcap.meteor.meteor import Meteor as PMeteor
        from pycocoevalcap.rouge.rouge import Rouge as PRouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer as PTok
        from tipcap_eval.bleu.bleu import Bleu
        from tipcap_eval.cider.cider import Cider
        from tipcap_eval.meteor.meteor import Meteor
        from tipcap_eval.rouge.rouge import Rouge
        from tipcap_eval.tokenizer.ptbtokenizer import PTBTokenizer
        gts_raw = {}
        for a in json.load(open(os.path.join(DATA, "fakecap_refs.json")))["annotations"]:
            gts_raw.setdefault(a["image_id"], []).append({"caption": a["caption"]})
        res_raw = {r["image_id"]: [{"caption": r["caption"]}] for r in json.load(open(os.path.join(DATA, "fakecap_results.json")))}
        gts_raw = {k: v for k, v in gts_raw.items() if k in res_raw}
        res_raw = {k: res_raw[k] for k in gts_raw}
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            pg, pr = PTok().tokenize(gts_raw), PTok().tokenize(res_raw)
        g, r = PTBTokenizer().tokenize(gts_raw), PTBTokenizer().tokenize(res_raw)
        check(g == pg and r == pr, "PTB tokens differ from the jar's")
        for ours, theirs in ((Bleu(4), PBleu(4)), (Meteor(), PMeteor()), (Rouge(), PRouge()), (Cider(), PCider())):
            with contextlib.redirect_stdout(io.StringIO()) as mine:
                s, per = ours.compute_score(g, r)
            with contextlib.redirect_stdout(io.StringIO()) as toolkit:
                ps, pper = theirs.compute_score(pg, pr)
            check(type(s) is type(ps) and type(per) is type(pper), "%s: types %s %s, toolkit %s %s" % (ours.method(), type(s), type(per), type(ps), type(pper)))
            check(mine.getvalue() == toolkit.getvalue(), "%s prints %r, the toolkit %r" % (ours.method(), mine.getvalue(), toolkit.getvalue()))
            flat = lambda x: [float(v) for v in (sum(x, []) if type(x) is list and type(x[0]) is list else list(x))]  # noqa: E731
            check(flat([s] if not isinstance(s, list) else [s]) == flat([ps] if not isinstance(ps, list) else [ps]),
                  "%s: %r, the toolkit %r" % (ours.method(), s, ps))
            diff = [(k, a, b) for k, (a, b) in enumerate(zip(flat(per), flat(pper))) if a != b]
            check(not diff, "%s: %d per-image scores differ, e.g. %r" % (ours.method(), len(diff), diff[:1]))

    def test_bundled_table_found():
        from tipcap_eval import _native
        bundled = os.path.join(_native.METEOR_DIR, "paraphrase-en.gz")
        if not os.path.exists(os.path.join(REPO, "data", "meteor", "paraphrase-en.gz")):
            return "data/meteor/paraphrase-en.gz was not fetched (scripts/install-deps.sh), so the wheel has none"
        old = os.environ.pop("TIPCAP_METEOR_PARAPHRASE")
        try:
            check(os.path.exists(bundled) and _native.find_paraphrase() == bundled, "the wheel's table is not the one found")
        finally:
            os.environ["TIPCAP_METEOR_PARAPHRASE"] = old

    def test_meteor_without_table_says_so():
        old = os.environ.get("TIPCAP_METEOR_PARAPHRASE")
        os.environ["TIPCAP_METEOR_PARAPHRASE"] = os.path.join(tmp, "none.gz")
        try:
            from tipcap_eval.meteor.meteor import Meteor
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                m = Meteor()
            check(any("WITHOUT the paraphrase module" in str(x.message) for x in w) and not m.paraphrase, "no warning")
            s, _ = m.compute_score({1: ["a big dog"]}, {1: ["a large dog"]})
            check(not m.paraphrase and 0 < s < 1, repr(s))
        finally:
            if old is None:
                del os.environ["TIPCAP_METEOR_PARAPHRASE"]
            else:
                os.environ["TIPCAP_METEOR_PARAPHRASE"] = old

    def test_spice_jar():
        if not (shutil.which("javac") and shutil.which("jar") and shutil.which("java")):
            return "needs javac, jar and java to build the SPICE stand-in"
        jar_dir = os.path.join(tmp, "spice")
        os.makedirs(jar_dir, exist_ok=True)
        subprocess.run(["javac", "-d", jar_dir, os.path.join(REPO, "tests", "eval_spice_standin", "SpiceStandIn.java")], check=True)
        open(os.path.join(jar_dir, "m.txt"), "w").write("Main-Class: SpiceStandIn\n")
        subprocess.run("jar cfm spice-1.0.jar m.txt *.class", shell=True, cwd=jar_dir, check=True)
        from tipcap_eval.spice.spice import Spice
        spice = Spice(spice_jar=os.path.join(jar_dir, "spice-1.0.jar"))
        with contextlib.redirect_stdout(io.StringIO()):
            s, per = spice.compute_score({10: ["a dog runs"], 9: ["two cats sleep"]}, {10: ["a dog"], 9: ["two dogs"]})
        check(spice.method() == "SPICE", spice.method())
        # the stand-in's F-scores in sorted id order: 9 (precision 1/2, recall 1/3), 10 (1, 2/3)
        check(abs(per[0]["All"]["f"] - 0.4) < 1e-12 and abs(per[1]["All"]["f"] - 0.8) < 1e-12 and per[1]["All"]["pr"] == 1.0
              and set(per[0]) >= {"All", "Object", "Size"}, repr(per))
        check(float(s) == (per[0]["All"]["f"] + per[1]["All"]["f"]) / 2, repr(s))

    for fn in (test_api_like_pycocoevalcap, test_example_flow_golden, test_example_flow_fakecap, test_same_as_pycocoevalcap,
               test_bundled_table_found, test_meteor_without_table_says_so, test_spice_jar):
        case(fn)


def tipcap_eval_path():
    import tipcap_eval
    return os.path.dirname(tipcap_eval.__file__)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--checks":
        checks(sys.argv[2])
        print("%(passed)d passed, %(failed)d failed, %(skipped)d skipped" % counts)
        return 1 if counts["failed"] else 0
    if not importlib.util.find_spec("pip") or not importlib.util.find_spec("setuptools"):
        print("SKIP test_eval_python: python3 lacks pip or setuptools (the package builds with pip install ./eval)")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    with tempfile.TemporaryDirectory(prefix="tipcap-test-eval-python-") as tmp:
        # with setuptools and wheel installed (make test's install-deps adds wheel) the build needs
        # nothing from PyPI; without wheel pip fetches the build requirements
        no_isolation = ["--no-build-isolation"] if importlib.util.find_spec("wheel") else []
        build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                                *no_isolation, "-w", os.path.join(tmp, "dist"), os.path.join(REPO, "eval")],
                               capture_output=True, text=True)
        wheels = [f for f in os.listdir(os.path.join(tmp, "dist"))] if build.returncode == 0 else []
        if not wheels:
            print("FAIL test_pip_wheel\n  pip wheel ./eval failed:\n" + build.stdout[-2000:] + build.stderr[-3000:])
            print("0 passed, 1 failed, 0 skipped")
            return 1
        print("ok   test_pip_wheel (%s)" % wheels[0])
        site = os.path.join(tmp, "site")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--root-user-action=ignore", "--no-deps", "--target", site,
                        os.path.join(tmp, "dist", wheels[0])], check=True)
        env = dict(os.environ, PYTHONPATH=site, TIPCAP_TEST_PASSED_BEFORE="1")
        # the checkout's table, whose index is built already (the wheel's copy would be indexed
        # again on first use, 10-20 s); test_bundled_table_found checks that copy is found
        table = os.path.join(REPO, "data", "meteor", "paraphrase-en.gz")
        if os.path.exists(table):
            env["TIPCAP_METEOR_PARAPHRASE"] = table
        return subprocess.run([sys.executable, os.path.abspath(__file__), "--checks", site], env=env, cwd=tmp).returncode


if __name__ == "__main__":
    sys.exit(main())
