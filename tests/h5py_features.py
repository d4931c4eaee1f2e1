#!/usr/bin/env python3
"""h5py side of tests/test_data_features.c (exit 3 when h5py or numpy is missing: test skipped).
  h5py_features.py summarize FILE   print a JSON summary of a feature file as h5py sees it
  h5py_features.py write FILE       write a feature file with h5py defaults (float16 texts,
                                    float32 images, str lists, int64 index) from the formula
                                    value(i, j) = sin(0.1 * (7 * i + j + 1)) + 0.05 * (i + 1)"""
import json
import sys

try:
    import h5py
    import numpy as np
except ImportError:
    sys.exit(3)


def formula(n, d, offset):
    i = np.arange(n)[:, None]
    j = np.arange(d)[None, :]
    return np.sin(0.1 * (7 * i + j + 1 + offset)) + 0.05 * (i + 1)


def summarize(path):
    out = {}
    with h5py.File(path, "r") as f:
        for name in ["images/embeddings", "images/keys", "texts/embeddings", "texts/captions", "texts/image_index",
                     "vocab/words", "vocab/embeddings", "synth/gap_mu", "synth/gap_cov"]:
            if name not in f:
                continue
            ds = f[name]
            entry = {"shape": list(ds.shape), "dtype": str(ds.dtype), "chunked": ds.chunks is not None}
            if ds.dtype.kind in "fi":
                entry["sum"] = float(np.asarray(ds[()], dtype=np.float64).sum())
            else:
                entry["values"] = [s.decode("utf-8") if isinstance(s, bytes) else s for s in ds[()]]
            out[name] = entry
        out["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                        for k, v in f.attrs.items()}
    print(json.dumps(out))


def write(path):
    n_img, n_txt, d = 3, 5, 16
    with h5py.File(path, "w") as f:
        f.attrs["clip_model"] = "ViT-B/32"
        f.attrs["dim"] = d
        f.attrs["normalized"] = 0
        f.attrs["source"] = "h5py test"
        f["images/embeddings"] = formula(n_img, d, 0).astype(np.float32)
        f["images/keys"] = ["a.jpg", "b.jpg", "c\u00e9.jpg"]
        f.create_dataset("texts/embeddings", data=formula(n_txt, d, 100).astype(np.float16), chunks=(2, d))
        f["texts/captions"] = ["one", "two", "caf\u00e9", "\U0001F436 dog", "five"]
        f["texts/image_index"] = np.array([0, 0, 1, 2, -1], dtype=np.int64)
        f["vocab/words"] = ["dog", "fire hydrant"]
        f["vocab/embeddings"] = formula(2, d, 200).astype(np.float32)


if __name__ == "__main__":
    {"summarize": summarize, "write": write}[sys.argv[1]](sys.argv[2])
