"""pycocoevalcap's COCOEvalCap: tokenise, then every scorer, with .eval, .imgToEval, .evalImgs."""
from .bleu.bleu import Bleu
from .cider.cider import Cider
from .meteor.meteor import Meteor
from .rouge.rouge import Rouge
from .spice.spice import Spice
from .tokenizer.ptbtokenizer import PTBTokenizer


class COCOEvalCap:
    def __init__(self, coco, cocoRes):
        self.evalImgs = []
        self.eval = {}
        self.imgToEval = {}
        self.coco = coco
        self.cocoRes = cocoRes
        self.params = {"image_id": coco.getImgIds()}

    def evaluate(self):
        imgIds = self.params["image_id"]
        gts = {imgId: self.coco.imgToAnns[imgId] for imgId in imgIds}
        res = {imgId: self.cocoRes.imgToAnns[imgId] for imgId in imgIds}
        print("tokenization...")
        tokenizer = PTBTokenizer()
        gts = tokenizer.tokenize(gts)
        res = tokenizer.tokenize(res)
        print("setting up scorers...")
        meteor = Meteor()
        spice = Spice()
        scorers = [(Bleu(4), ["Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4"]), (meteor, "METEOR"), (Rouge(), "ROUGE_L"),
                   (Cider(), "CIDEr"), (spice, spice.method())]  # "SPICE-approx" unless a SPICE jar is given
        for scorer, method in scorers:
            print("computing %s score..." % (scorer.method()))
            score, scores = scorer.compute_score(gts, res)
            if type(method) == list:
                for sc, scs, m in zip(score, scores, method):
                    self.setEval(sc, m)
                    self.setImgToEvalImgs(scs, gts.keys(), m)
                    print("%s: %0.3f" % (m, sc))
            else:
                self.setEval(score, method)
                self.setImgToEvalImgs(scores, gts.keys(), method)
                note = " (without the paraphrase module: no paraphrase-en.gz)" if method == "METEOR" and not meteor.paraphrase else ""
                print("%s: %0.3f%s" % (method, score, note))
        self.setEvalImgs()

    def setEval(self, score, method):
        self.eval[method] = score

    def setImgToEvalImgs(self, scores, imgIds, method):
        for imgId, score in zip(imgIds, scores):
            if imgId not in self.imgToEval:
                self.imgToEval[imgId] = {}
                self.imgToEval[imgId]["image_id"] = imgId
            self.imgToEval[imgId][method] = score

    def setEvalImgs(self):
        self.evalImgs = [eval for imgId, eval in self.imgToEval.items()]
