"""pycocoevalcap's Spice. Without Java this is SPICE-approx, tipcap's native approximation of SPICE
(not SPICE: docs/EVAL.md gives the gap), and method() says so. With spice-1.0.jar (the argument
spice_jar, or $TIPCAP_SPICE_JAR; Java and Stanford CoreNLP 3.6.0 in its lib/) it runs the real
SPICE the toolkit's way."""
import json
import os
import subprocess
import tempfile

import numpy as np

from .._native import Images, MeteorResources, lib


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


class Spice:
    def __init__(self, spice_jar=None):
        self.spice_jar = spice_jar or os.environ.get("TIPCAP_SPICE_JAR") or None
        if self.spice_jar and not os.access(self.spice_jar, os.R_OK):
            raise FileNotFoundError(f"tipcap_eval: spice jar {self.spice_jar} not found")

    def compute_score(self, gts, res):
        assert sorted(gts.keys()) == sorted(res.keys())
        if self.spice_jar:
            return self._jar_score(gts, res)
        # SPICE-approx: per image an F-score over tuples, in gts' order; scores follow sorted ids
        images = Images(gts, res)
        per_image = images.scores()
        resources = MeteorResources(None)  # WordNet synonyms only
        lib.spice_approx_score(resources.handle, images.array, images.n, per_image)
        by_id = dict(zip(images.ids, per_image[:images.n]))
        ids = sorted(gts.keys())
        scores = [{"All": {"f": by_id[i]}} for i in ids]
        return np.mean(np.array([by_id[i] for i in ids])), scores

    def _jar_score(self, gts, res):
        img_ids = sorted(gts.keys())
        for i in img_ids:
            assert type(res[i]) is list and len(res[i]) == 1
            assert type(gts[i]) is list and len(gts[i]) >= 1
        jar = os.path.abspath(self.spice_jar)
        cwd = os.path.dirname(jar)
        cache_dir = os.path.join(cwd, "cache")
        os.makedirs(cache_dir, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            in_path, out_path = os.path.join(tmp, "in.json"), os.path.join(tmp, "out.json")
            with open(in_path, "w") as f:
                json.dump([{"image_id": i, "test": res[i][0], "refs": gts[i]} for i in img_ids], f, indent=2)
            subprocess.check_call(["java", "-jar", "-Xmx8G", jar, in_path, "-cache", cache_dir, "-out", out_path,
                                   "-subset", "-silent"], cwd=cwd)
            with open(out_path) as f:
                results = json.load(f)
        by_id = {item["image_id"]: item["scores"] for item in results}
        average = np.mean(np.array([_float(item["scores"]["All"]["f"]) for item in results]))
        scores = [{category: {k: _float(v) for k, v in values.items()} for category, values in by_id[i].items()}
                  for i in img_ids]
        return average, scores

    def method(self):
        return "SPICE" if self.spice_jar else "SPICE-approx"
