"""pycocoevalcap's Cider: CIDEr-D (n = 4, sigma 6, idf over the scored images' references)."""
import numpy as np

from .._native import Images, lib


class Cider:
    def __init__(self, test=None, refs=None, n=4, sigma=6.0):
        if n != 4 or sigma != 6.0:
            raise ValueError("tipcap_eval's Cider computes the toolkit's CIDEr-D (n=4, sigma=6.0)")
        self._n = n
        self._sigma = sigma

    def compute_score(self, gts, res):
        images = Images(gts, res)
        per_image = images.scores()
        mean = lib.cider_d_score(images.array, images.n, per_image)
        return np.float64(mean), np.array(per_image[:images.n], dtype=np.float64)

    def method(self):
        return "CIDEr"
