"""pycocoevalcap's Bleu: BLEU-1..n ('closest' reference length), corpus and per image."""
from .._native import BleuStats, Images, lib


class Bleu:
    def __init__(self, n=4):
        if not 1 <= n <= 4:
            raise ValueError(f"tipcap_eval's Bleu computes BLEU-1 to BLEU-4 (n={n})")
        self._n = n
        self._hypo_for_image = {}
        self.ref_for_image = {}

    def compute_score(self, gts, res, verbose=1):
        images = Images(gts, res)
        corpus = (lib.bleu_score.argtypes[2]._type_ * 4)()
        per_image = (corpus._type_ * (4 * max(images.n, 1)))()
        stats = BleuStats()
        lib.bleu_score(images.array, images.n, corpus, per_image, stats)
        n = self._n
        if verbose > 0:
            # BLEU-k depends only on the first k n-gram orders, so Bleu(n) is Bleu(4) cut at n
            print({"testlen": int(stats.testlen), "reflen": int(stats.reflen),
                   "guess": [int(g) for g in stats.guess[:n]], "correct": [int(c) for c in stats.correct[:n]]})
            print("ratio:", (stats.testlen + 1e-15) / (stats.reflen + 1e-9))
        score = [corpus[k] for k in range(n)]
        scores = [[per_image[4 * i + k] for i in range(images.n)] for k in range(n)]
        return score, scores

    def method(self):
        return "Bleu"
