"""pycocoevalcap's Rouge: ROUGE-L (beta 1.2), mean over images."""
import numpy as np

from .._native import Images, lib


class Rouge:
    def __init__(self):
        self.beta = 1.2

    def compute_score(self, gts, res):
        images = Images(gts, res)
        per_image = images.scores()
        mean = lib.rouge_l_score(images.array, images.n, per_image)
        return np.float64(mean), np.array(per_image[:images.n], dtype=np.float64)

    def method(self):
        return "Rouge"
