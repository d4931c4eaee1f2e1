"""tipcap_eval: pycocoevalcap 1.2's metrics in C, in-process, without Java.

The modules mirror pycocoevalcap's: tokenizer.ptbtokenizer.PTBTokenizer, bleu.bleu.Bleu,
meteor.meteor.Meteor, rouge.rouge.Rouge, cider.cider.Cider, spice.spice.Spice, eval.COCOEvalCap.
"""
__version__ = "1.0.0"
