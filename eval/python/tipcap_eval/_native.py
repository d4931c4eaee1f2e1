"""The C evaluator (tipcap's eval/ sources, built into _native_lib*.so) through ctypes."""
import ctypes
import glob
import importlib.util
import os

_HERE = os.path.dirname(os.path.abspath(__file__))
_matches = glob.glob(os.path.join(_HERE, "_native_lib*.so"))
if not _matches:
    raise ImportError(f"tipcap_eval: no _native_lib*.so in {_HERE} (install with pip install ./eval from a tipcap checkout)")
_lib = ctypes.CDLL(_matches[0])
_libc = ctypes.CDLL(None)
_libc.free.argtypes = [ctypes.c_void_p]

METEOR_DIR = os.path.join(_HERE, "data", "meteor")


class EvalImage(ctypes.Structure):
    # eval/eval.h
    _fields_ = [("id", ctypes.c_char_p), ("id_is_number", ctypes.c_int), ("hyp", ctypes.c_char_p),
                ("refs", ctypes.POINTER(ctypes.c_char_p)), ("n_refs", ctypes.c_int)]


class BleuStats(ctypes.Structure):
    _fields_ = [("testlen", ctypes.c_double), ("reflen", ctypes.c_double), ("guess", ctypes.c_double * 4),
                ("correct", ctypes.c_double * 4)]


_DoubleP = ctypes.POINTER(ctypes.c_double)
_ImageP = ctypes.POINTER(EvalImage)
_lib.ptb_tokenize_batch.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)]
_lib.ptb_tokenize_batch.restype = None
_lib.bleu_score.argtypes = [_ImageP, ctypes.c_size_t, _DoubleP, _DoubleP, ctypes.POINTER(BleuStats)]
_lib.bleu_score.restype = None
for _name in ("rouge_l_score", "cider_d_score"):
    getattr(_lib, _name).argtypes = [_ImageP, ctypes.c_size_t, _DoubleP]
    getattr(_lib, _name).restype = ctypes.c_double
_lib.meteor_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
_lib.meteor_open.restype = ctypes.c_void_p
_lib.meteor_close.argtypes = [ctypes.c_void_p]
_lib.meteor_close.restype = None
_lib.meteor_has_paraphrase.argtypes = [ctypes.c_void_p]
_lib.meteor_has_paraphrase.restype = ctypes.c_int
_lib.meteor_score.argtypes = [ctypes.c_void_p, _ImageP, ctypes.c_size_t, _DoubleP, ctypes.c_int]
_lib.meteor_score.restype = ctypes.c_double
_lib.spice_approx_score.argtypes = [ctypes.c_void_p, _ImageP, ctypes.c_size_t, _DoubleP]
_lib.spice_approx_score.restype = ctypes.c_double


def tokenize(captions):
    """PTB tokenisation of captions as one batch (the toolkit's), then its punctuation filter."""
    n = len(captions)
    encoded = (ctypes.c_char_p * max(n, 1))(*[c.encode("utf-8") for c in captions])
    out = (ctypes.c_void_p * max(n, 1))()
    _lib.ptb_tokenize_batch(encoded, n, out)
    tokens = []
    for k in range(n):
        tokens.append(ctypes.string_at(out[k]).decode("utf-8"))
        _libc.free(out[k])
    return tokens


class Images:
    """gts and res (pycocoevalcap's dicts: image id -> list of strings) as the C side's array."""

    def __init__(self, gts, res, max_hyps=1):
        assert gts.keys() == res.keys()
        self.ids = list(gts.keys())
        self.n = len(self.ids)
        self.array = (EvalImage * max(self.n, 1))()
        self._keep = []
        for i, key in enumerate(self.ids):
            hypo, ref = res[key], gts[key]
            assert type(hypo) is list and len(hypo) == max_hyps
            assert type(ref) is list and len(ref) > 0
            refs = (ctypes.c_char_p * len(ref))(*[r.encode("utf-8") for r in ref])
            ident = str(key).encode("utf-8")
            self._keep.append((refs, ident))
            self.array[i] = EvalImage(ident, int(isinstance(key, (int, float)) and not isinstance(key, bool)),
                                      hypo[0].encode("utf-8"), refs, len(ref))

    def scores(self):
        return (ctypes.c_double * max(self.n, 1))()


def find_paraphrase():
    """METEOR's paraphrase-en.gz: $TIPCAP_METEOR_PARAPHRASE, the copy in this package (present
    when it was built after scripts/install-deps.sh), $TIPCAP_DATA/meteor, an installed
    pycocoevalcap's; None when there is none."""
    env = os.environ.get("TIPCAP_METEOR_PARAPHRASE")
    if env:
        return env if os.access(env, os.R_OK) else None
    candidates = [os.path.join(METEOR_DIR, "paraphrase-en.gz")]
    if os.environ.get("TIPCAP_DATA"):
        candidates.append(os.path.join(os.environ["TIPCAP_DATA"], "meteor", "paraphrase-en.gz"))
    spec = importlib.util.find_spec("pycocoevalcap")
    if spec and spec.submodule_search_locations:
        candidates.append(os.path.join(list(spec.submodule_search_locations)[0], "meteor", "data", "paraphrase-en.gz"))
    return next((c for c in candidates if os.access(c, os.R_OK)), None)


class MeteorResources:
    """METEOR's resources loaded once (meteor_open), with the paraphrase table when found."""

    def __init__(self, paraphrase):
        err = ctypes.create_string_buffer(4096)
        self.handle = _lib.meteor_open(METEOR_DIR.encode(), paraphrase.encode() if paraphrase else None, err, len(err))
        if not self.handle:
            raise RuntimeError("tipcap_eval: " + err.value.decode(errors="replace"))

    def __del__(self):
        if getattr(self, "handle", None):
            _lib.meteor_close(self.handle)
            self.handle = None


lib = _lib
