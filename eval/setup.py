# `pip install ./eval` (or `pip wheel ./eval`) from a tipcap checkout: the evaluator's C sources
# become tipcap_eval/_native*.so, loaded with ctypes (no Python headers needed), and METEOR's
# resources from data/meteor are copied into the package (the paraphrase table too when
# scripts/install-deps.sh has fetched it).
import os
import shutil
import sys

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
METEOR_DATA = os.path.join(REPO, "data", "meteor")
METEOR_FILES = ["english.synsets", "english.exceptions", "english.function.words", "english.nonbreaking.prefixes",
                "COPYING.WORDNET", "paraphrase-en.gz"]
SOURCES = ["ptb_tokenizer.c", "tokenize.c", "ngrams.c", "bleu.c", "rouge.c", "cider.c", "util.c", "meteor.c",
           "meteor_normalize.c", "paraphrase_index.c", "spice_approx.c"]

if not os.path.exists("/usr/include/libstemmer.h") and not os.path.exists("/usr/local/include/libstemmer.h"):
    sys.exit("tipcap_eval: needs the Snowball stemmer library (libstemmer.h): apt-get install libstemmer-dev")
for f in METEOR_FILES[:4]:
    if not os.path.exists(os.path.join(METEOR_DATA, f)):
        sys.exit(f"tipcap_eval: {os.path.join(METEOR_DATA, f)} missing: build from a tipcap checkout (pip install ./eval)")


class BuildWithMeteorData(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "tipcap_eval", "data", "meteor")
        os.makedirs(target, exist_ok=True)
        for f in METEOR_FILES:
            if os.path.exists(os.path.join(METEOR_DATA, f)):
                shutil.copyfile(os.path.join(METEOR_DATA, f), os.path.join(target, f))
        if not os.path.exists(os.path.join(target, "paraphrase-en.gz")):
            print("tipcap_eval: data/meteor/paraphrase-en.gz not fetched (scripts/install-deps.sh): the package will look "
                  "for it at run time (TIPCAP_METEOR_PARAPHRASE, TIPCAP_DATA, an installed pycocoevalcap)", file=sys.stderr)


# A plain shared library (no Python module init): setuptools compiles and links it like an
# extension, and tipcap_eval/_native.py opens it with ctypes.
native = Extension("tipcap_eval._native_lib", sources=SOURCES, include_dirs=[REPO],
                   extra_compile_args=["-std=c11", "-D_GNU_SOURCE", "-O2", "-fopenmp"],
                   extra_link_args=["-fopenmp"], libraries=["stemmer", "m"])
setup(ext_modules=[native], cmdclass={"build_py": BuildWithMeteorData})
