"""pycocoevalcap's Meteor: METEOR 1.5 as its jar runs (-l en -norm), corpus score from the summed
statistics, per-image scores."""
import os
import warnings

from .._native import Images, MeteorResources, find_paraphrase, lib


class Meteor:
    def __init__(self):
        paraphrase = find_paraphrase()
        self._resources = MeteorResources(paraphrase)
        self.paraphrase = paraphrase is not None
        if not self.paraphrase:
            warnings.warn("tipcap_eval: METEOR's paraphrase-en.gz not found (set TIPCAP_METEOR_PARAPHRASE, or rebuild the "
                          "package after scripts/install-deps.sh): METEOR runs WITHOUT the paraphrase module and differs "
                          "from pycocoevalcap's", stacklevel=2)

    def compute_score(self, gts, res):
        images = Images(gts, res)
        per_image = images.scores()
        score = lib.meteor_score(self._resources.handle, images.array, images.n, per_image, os.cpu_count() or 1)
        self.paraphrase = bool(lib.meteor_has_paraphrase(self._resources.handle))
        return score, list(per_image[:images.n])

    def method(self):
        return "METEOR"
