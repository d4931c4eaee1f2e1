#!/usr/bin/env python3
"""GPT-2 oracle for tests/test_model.c (test_gpt2_import).

  gpt2_oracle.py make DIR   writes DIR/model.safetensors: a GPT-2 (2 layers, 2 heads, width 16, the
                            real 50257-token vocabulary) with random weights, in Hugging Face's
                            layout (Conv1D weights [in, out])
  gpt2_oracle.py check DIR  reads DIR/prefix.npy [B,K,C], DIR/tokens.npy [B,L] and DIR/ours.npy
                            [B,K+L,V] (tipcap's logits), computes GPT-2's logits for inputs_embeds =
                            [prefix; wte[tokens]] and compares; exit 0 when within 1e-4

With transformers and torch installed, the checkpoint is written by GPT2LMHeadModel (random
init, save_pretrained) and the logits come from it; otherwise from a numpy transcription of
Hugging Face's GPT2Model (the oracle used is printed). Exit 3: numpy/safetensors missing.
"""
import os
import sys

try:
    import numpy as np
    from safetensors.numpy import load_file, save_file
except ImportError:
    sys.exit(3)

try:
    import torch
    import transformers
    HF = True
except ImportError:
    HF = False

CONFIG = dict(vocab_size=50257, n_positions=32, n_embd=16, n_layer=2, n_head=2)


def make(d):
    if HF:
        torch.manual_seed(0)
        cfg = transformers.GPT2Config(**CONFIG, initializer_range=0.2)
        model = transformers.GPT2LMHeadModel(cfg)
        model.save_pretrained(d, safe_serialization=True)
        print("  oracle: transformers", transformers.__version__)
        return
    rng = np.random.default_rng(0)
    C, t = CONFIG["n_embd"], {}
    r = lambda *shape: (0.2 * rng.standard_normal(shape)).astype(np.float32)
    t["wte.weight"] = r(CONFIG["vocab_size"], C)
    t["wpe.weight"] = r(CONFIG["n_positions"], C)
    for l in range(CONFIG["n_layer"]):
        p = f"h.{l}."
        t[p + "ln_1.weight"], t[p + "ln_1.bias"] = 1 + r(C), r(C)
        t[p + "attn.c_attn.weight"], t[p + "attn.c_attn.bias"] = r(C, 3 * C), r(3 * C)
        t[p + "attn.c_proj.weight"], t[p + "attn.c_proj.bias"] = r(C, C), r(C)
        t[p + "ln_2.weight"], t[p + "ln_2.bias"] = 1 + r(C), r(C)
        t[p + "mlp.c_fc.weight"], t[p + "mlp.c_fc.bias"] = r(C, 4 * C), r(4 * C)
        t[p + "mlp.c_proj.weight"], t[p + "mlp.c_proj.bias"] = r(4 * C, C), r(C)
    t["ln_f.weight"], t["ln_f.bias"] = 1 + r(C), r(C)
    save_file(t, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    print("  oracle: numpy transcription of Hugging Face's GPT2Model")


def layer_norm(x, w, b):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * w + b


def gelu_new(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def numpy_logits(t, embeds):
    H, C = CONFIG["n_head"], CONFIG["n_embd"]
    B, T, _ = embeds.shape
    x = embeds + t["wpe.weight"][:T]
    for l in range(CONFIG["n_layer"]):
        p = f"h.{l}."
        h = layer_norm(x, t[p + "ln_1.weight"], t[p + "ln_1.bias"])
        q, k, v = np.split(h @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"], 3, axis=-1)
        split = lambda a: a.reshape(B, T, H, C // H).transpose(0, 2, 1, 3)
        q, k, v = split(q), split(k), split(v)
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(C // H)
        s = np.where(np.tril(np.ones((T, T), bool)), s, -np.inf)
        a = np.exp(s - s.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        y = (a @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + y @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        h = layer_norm(x, t[p + "ln_2.weight"], t[p + "ln_2.bias"])
        x = x + gelu_new(h @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"]) @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]
    x = layer_norm(x, t["ln_f.weight"], t["ln_f.bias"])
    return x @ t["wte.weight"].T


def check(d):
    prefix = np.load(os.path.join(d, "prefix.npy")).astype(np.float64)
    tokens = np.load(os.path.join(d, "tokens.npy"))
    ours = np.load(os.path.join(d, "ours.npy"))
    if HF:
        model = transformers.GPT2LMHeadModel.from_pretrained(d).double().eval()
        wte = model.transformer.wte.weight.detach().numpy()
        embeds = np.concatenate([prefix, wte[tokens]], axis=1)
        with torch.no_grad():
            want = model(inputs_embeds=torch.from_numpy(embeds)).logits.numpy()
        which = "transformers"
    else:
        t = {k: v.astype(np.float64) for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
        embeds = np.concatenate([prefix, t["wte.weight"][tokens]], axis=1)
        want = numpy_logits(t, embeds)
        which = "numpy"
    err = np.abs(ours - want).max() / max(np.abs(want).max(), 1e-30)
    print(f"  oracle: {which}; max |ours - GPT-2| / max |GPT-2| = {err:.2e} over {want.size} logits")
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        print(__doc__)
        sys.exit(2)
    sys.exit(make(sys.argv[2]) or 0 if sys.argv[1] == "make" else check(sys.argv[2]))
