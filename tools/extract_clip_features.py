#!/usr/bin/env python3
"""Images + captions + entity vocabulary -> the HDF5 feature file of tipcap (docs/DATA.md).

For users with CLIP weights (a GPU helps): encodes every image of a caption corpus with CLIP's
image encoder, every caption with its text encoder, and every entity of the vocabulary as the
prompt "a photo of a {entity}." (the mean over --templates when several are given), then writes

    /images/embeddings [N_img, D]   /images/keys [N_img]
    /texts/embeddings  [N_txt, D]   /texts/captions [N_txt]   /texts/image_index [N_txt] (int64)
    /vocab/words [N_voc]            /vocab/embeddings [N_voc, D] (float32)
    attributes on /: clip_model, dim, normalized (1), source

L2-normalised, float32 (or float16 with --float16), chunked; written to a temporary file and
renamed into place, so a failed run leaves nothing behind. Backends: open_clip (default; model
names such as ViT-B-32 with --pretrained openai) or OpenAI's clip package (--backend clip, model
names such as ViT-B/32).

Example:
    python3 tools/extract_clip_features.py --captions dataset_coco.json --split train \\
        --images /data/coco --out coco_train_vitb32.h5

`--tiny-random-model` builds a tiny randomly initialised open_clip model instead of loading
weights: it exists so the tests can run this script end to end without any download.
"""
import argparse
import json
import os
import sys
import tempfile

DEFAULT_TEMPLATES = ["a photo of a {}."]
SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}


def load_corpus(path, split):
    """[(key, image_path_relative, [captions])] for the images of `split` ("all" for every image)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    images = []
    if isinstance(data, dict) and isinstance(data.get("annotations"), list):  # COCO annotations
        by_id, order = {}, []
        for im in data.get("images", []):
            by_id[im["id"]] = (im["file_name"], [])
            order.append(im["id"])
        for i, ann in enumerate(data["annotations"]):
            if ann["image_id"] not in by_id:
                if "images" in data:
                    sys.exit(f"{path}: annotations[{i}].image_id: {ann['image_id']} is not in \"images\"")
                by_id[ann["image_id"]] = (str(ann["image_id"]), [])
                order.append(ann["image_id"])
            by_id[ann["image_id"]][1].append(ann["caption"])
        images = [(by_id[i][0], by_id[i][0], by_id[i][1]) for i in order]
    elif isinstance(data, dict) and isinstance(data.get("images"), list):  # Karpathy
        for i, im in enumerate(data["images"]):
            s = SPLITS.get(im.get("split"))
            if s is None:
                sys.exit(f"{path}: images[{i}].split: expected train, restval, val or test")
            if split != "all" and s != split:
                continue
            rel = os.path.join(im.get("filepath", ""), im["filename"])
            images.append((im["filename"], rel, [s_["raw"] for s_ in im["sentences"]]))
    elif isinstance(data, dict):  # {"image": ["caption", ...]}
        images = [(k, k, list(v)) for k, v in data.items()]
    else:
        sys.exit(f"{path}: expected a Karpathy, COCO annotations or {{\"image\": [captions]}} JSON object")
    for key, _, caps in images:
        for j, c in enumerate(caps):
            if not isinstance(c, str) or not c.strip():
                sys.exit(f"{path}: image \"{key}\" caption {j}: empty or not a string")
    return images


def load_vocab(path):
    """Entity names in index order: {"name": index}, ["name", ...] or one name per line."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if text.lstrip()[:1] == "{":
        data = json.loads(text)
        return [k.lower() for k, _ in sorted(data.items(), key=lambda kv: kv[1])]
    if text.lstrip()[:1] == "[":
        return [w.lower() for w in json.loads(text)]
    return [line.split(",")[0].strip().lower() for line in text.splitlines() if line.split(",")[0].strip()]


def write_features(path, image_keys, image_emb, captions, image_index, text_emb, vocab_words, vocab_emb,
                   clip_model, source, float16=False):
    """Writes the HDF5 layout atomically (temporary file beside `path`, then rename)."""
    import h5py
    import numpy as np

    dim = text_emb.shape[1]
    for name, x in [("/images/embeddings", image_emb), ("/texts/embeddings", text_emb), ("/vocab/embeddings", vocab_emb)]:
        if x is not None and x.shape[0] and (x.ndim != 2 or x.shape[1] != dim):
            raise ValueError(f"{path}: {name}: shape {x.shape} does not match D = {dim}")
        if x is not None and not np.isfinite(x).all():
            row = int(np.argwhere(~np.isfinite(x))[0][0])
            raise ValueError(f"{path}: {name}: row {row} is not finite")
    emb_dtype = np.float16 if float16 else np.float32
    string = h5py.string_dtype(encoding="utf-8")
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".tmp.", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            def dataset(name, data, dtype):
                rows = max(1, min(len(data), (1 << 20) // max(1, np.dtype(dtype).itemsize * (data.shape[1] if data.ndim == 2 else 1))))
                shape = data.shape
                f.create_dataset(name, data=data, dtype=dtype, chunks=(rows,) + tuple(shape[1:]), maxshape=(None,) + tuple(shape[1:]))
            dataset("images/embeddings", np.asarray(image_emb).reshape(-1, dim), emb_dtype)
            dataset("images/keys", np.array(image_keys, dtype=object), string)
            dataset("texts/embeddings", np.asarray(text_emb), emb_dtype)
            dataset("texts/captions", np.array(captions, dtype=object), string)
            dataset("texts/image_index", np.asarray(image_index, dtype=np.int64), np.int64)
            if vocab_words:
                dataset("vocab/words", np.array(vocab_words, dtype=object), string)
                dataset("vocab/embeddings", np.asarray(vocab_emb), np.float32)
            f.attrs["clip_model"] = clip_model
            f.attrs["dim"] = np.int64(dim)
            f.attrs["normalized"] = np.int64(1)
            f.attrs["source"] = source
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


class Encoder:
    """CLIP image and text encoders behind one interface (open_clip or OpenAI clip)."""

    def __init__(self, args):
        import torch

        self.torch = torch
        self.device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if args.tiny_random_model:
            import open_clip

            torch.manual_seed(args.seed)
            self.model = open_clip.CLIP(
                embed_dim=32,
                vision_cfg=open_clip.model.CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32),
                text_cfg=open_clip.model.CLIPTextCfg(context_length=77, vocab_size=49408, width=32, heads=2, layers=1),
            )
            self.preprocess = open_clip.image_transform(32, is_train=False)
            self.tokenize = open_clip.get_tokenizer("ViT-B-32")
            self.name = "tiny-random (tests only)"
        elif args.backend == "open_clip":
            import open_clip

            self.model, _, self.preprocess = open_clip.create_model_and_transforms(args.model, pretrained=args.pretrained)
            self.tokenize = open_clip.get_tokenizer(args.model)
            self.name = f"{args.model} ({args.pretrained})"
        else:
            import clip

            self.model, self.preprocess = clip.load(args.model, device=self.device)
            self.tokenize = lambda texts: clip.tokenize(texts, truncate=True)
            self.name = args.model
        self.model = self.model.to(self.device).eval()

    def _normalize(self, x):
        return (x / x.norm(dim=-1, keepdim=True)).float().cpu().numpy()

    def images(self, paths):
        from PIL import Image

        batch = self.torch.stack([self.preprocess(Image.open(p).convert("RGB")) for p in paths]).to(self.device)
        with self.torch.no_grad():
            return self._normalize(self.model.encode_image(batch))

    def texts(self, texts):
        with self.torch.no_grad():
            return self._normalize(self.model.encode_text(self.tokenize(texts).to(self.device)))


def batched(items, size):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--captions", required=True, help="caption corpus: Karpathy, COCO annotations or {\"image\": [captions]}")
    p.add_argument("--split", default="all", choices=["train", "val", "test", "all"], help="images of a Karpathy corpus (restval is train)")
    p.add_argument("--images", required=True, help="folder the image keys (Karpathy: filepath/filename) are relative to")
    p.add_argument("--out", required=True, help="the HDF5 feature file")
    p.add_argument("--vocab", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "vocab", "vinvl_vg_coco_oi_1848.json"),
                   help="entity vocabulary (default: the shipped VinVL 1,848 classes)")
    p.add_argument("--no-vocab", action="store_true", help="write no /vocab group")
    p.add_argument("--templates", nargs="+", default=DEFAULT_TEMPLATES, help="prompt templates for the vocabulary ({} is the entity)")
    p.add_argument("--backend", default="open_clip", choices=["open_clip", "clip"])
    p.add_argument("--model", default="ViT-B-32", help="open_clip: ViT-B-32; clip: ViT-B/32")
    p.add_argument("--pretrained", default="openai", help="open_clip weights tag or checkpoint path")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--max-images", type=int, default=None, help="only the first N images")
    p.add_argument("--float16", action="store_true", help="store image and text embeddings as float16")
    p.add_argument("--tiny-random-model", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    import numpy as np

    images = load_corpus(args.captions, args.split)[:args.max_images]
    if not images:
        sys.exit(f"{args.captions}: no images in split {args.split}")
    missing = [rel for _, rel, _ in images if not os.path.isfile(os.path.join(args.images, rel))]
    if missing:
        sys.exit(f"{args.images}: {len(missing)} images are missing, e.g. {missing[0]}")
    vocab = [] if args.no_vocab else load_vocab(args.vocab)
    enc = Encoder(args)

    image_emb = np.concatenate([enc.images([os.path.join(args.images, rel) for _, rel, _ in chunk])
                                for chunk in batched(images, args.batch_size)])
    captions = [c for _, _, caps in images for c in caps]
    image_index = [i for i, (_, _, caps) in enumerate(images) for _ in caps]
    text_emb = np.concatenate([enc.texts(chunk) for chunk in batched(captions, args.batch_size)])
    vocab_emb = None
    if vocab:
        per_template = [np.concatenate([enc.texts([t.format(w) for w in chunk]) for chunk in batched(vocab, args.batch_size)])
                        for t in args.templates]
        vocab_emb = np.mean(per_template, axis=0)
        vocab_emb /= np.linalg.norm(vocab_emb, axis=1, keepdims=True)
    write_features(args.out, [k for k, _, _ in images], image_emb, captions, image_index, text_emb, vocab, vocab_emb,
                   enc.name, f"tools/extract_clip_features.py {os.path.basename(args.captions)} split {args.split}",
                   float16=args.float16)
    print(f"{len(images)} images, {len(captions)} captions, {len(vocab)} vocabulary prompts, D = {text_emb.shape[1]} -> {args.out}")


if __name__ == "__main__":
    main()
