#!/usr/bin/env python3
"""The TIPCap model of tipcap in PyTorch, for the comparisons in bench/ and tests/: the same
architecture and parameter names as train/model.c, with the decoder as transformers'
GPT2LMHeadModel, so that a tipcap checkpoint runs in Hugging Face generate and the training step
runs in PyTorch.

  x = emb (inference) or normalize(emb + mu + L z) (training)
  MLP projector D -> H1 -> K*C (or linear D -> K*C + positions + transformer mapper) -> p [B,K,C]
  prompt word -> mean of the decoder's token embeddings of " word", projected -> q
  interaction encoder (pre-LN, bidirectional, key padding) over [p + type[:K]; q + type[K]]
  its first K outputs prefix GPT-2 (inputs_embeds; GPT-2 adds the positions)

usage (the options mirror tipcap-infer):
  tipcap_torch.py caption --checkpoint RUN_OR_CKPT --features F.h5 --out results.json
      [--beam 5] [--max-len N] [--length-penalty 0] [--no-repeat-ngram 0] [--no-stop-at-period]
      [--prompts FILE.json] [--batch 32] [--limit N] [--device cpu|cuda] [--dtype fp32|bf16]
      [--with-scores]
  tipcap_torch.py config --checkpoint RUN_OR_CKPT --key NAME   prints one key of the model config
  caption: captions with GPT2LMHeadModel.generate (greedy for beam 1, beam search otherwise, with
  early_stopping="never": the exact stopping rule of tipcap's beam search) and prints
  "N captions in S s (R images/s, beam B, transformers V, DEVICE DTYPE)".
needs: torch, transformers, safetensors, h5py
"""
import argparse
import glob
import json
import os
import re
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers

GPT2_EOT, GPT2_PERIOD = 50256, 13
LAYERNORM_EPS = 1e-5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Attention(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.qkv = nn.Linear(C, 3 * C)   # rows: q | k | v, heads contiguous (as kernels/attention.h)
        self.proj = nn.Linear(C, C)

    def forward(self, x, key_mask):
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.H, C // self.H).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.fc = nn.Linear(C, 4 * C)
        self.proj = nn.Linear(4 * C, C)

    def forward(self, x):
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C, eps=LAYERNORM_EPS)
        self.attn = Attention(C, H)
        self.ln_2 = nn.LayerNorm(C, eps=LAYERNORM_EPS)
        self.mlp = MLP(C)

    def forward(self, x, key_mask):
        x = x + self.attn(self.ln_1(x), key_mask)
        return x + self.mlp(self.ln_2(x))


class Stack(nn.Module):
    """Bidirectional pre-LN blocks and a final layer norm (the interaction encoder, the mapper)."""

    def __init__(self, L, C, H):
        super().__init__()
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=LAYERNORM_EPS)

    def forward(self, x, key_mask=None):
        for block in self.h:
            x = block(x, key_mask)
        return self.ln_f(x)


class Projector(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        D, K, C = cfg["clip_dim"], cfg["prefix_len"], cfg["width"]
        self.K, self.C, self.mapper = K, C, cfg["map_layers"] > 0
        if self.mapper:
            self.linear = nn.Linear(D, K * C)
            self.pos = nn.Parameter(torch.zeros(K, C))
            self.h = Stack(cfg["map_layers"], C, cfg["int_heads"]).h
            self.ln_f = nn.LayerNorm(C, eps=LAYERNORM_EPS)
        else:
            self.fc1 = nn.Linear(D, cfg["proj_hidden"])
            self.fc2 = nn.Linear(cfg["proj_hidden"], K * C)

    def forward(self, x):
        B = x.shape[0]
        if not self.mapper:
            return self.fc2(F.gelu(self.fc1(x), approximate="tanh")).view(B, self.K, self.C)
        h = self.linear(x).view(B, self.K, self.C) + self.pos
        for block in self.h:
            h = block(h, None)
        return self.ln_f(h)


class Gap(nn.Module):
    """The Gaussian of the mapping: x = normalize(t + mu + L z), z ~ N(0, I)."""

    def __init__(self, D):
        super().__init__()
        self.mu = nn.Parameter(torch.zeros(D))
        self.chol = nn.Parameter(torch.zeros(D, D))

    def forward(self, t):
        z = torch.randn_like(t)
        return F.normalize(t + self.mu + z @ self.chol.tril().T, dim=-1)


class PromptProjection(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.proj = nn.Linear(C, C)


class Interaction(Stack):
    def __init__(self, cfg):
        super().__init__(cfg["int_layers"], cfg["width"], cfg["int_heads"])
        # interaction.type in the checkpoint (nn.Module.type is a method)
        self.type_emb = nn.Parameter(torch.zeros(cfg["prefix_len"] + 1, cfg["width"]))


class TipcapTorch(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.K = cfg["prefix_len"]
        self.gap = Gap(cfg["clip_dim"])
        self.projector = Projector(cfg)
        self.prompt = PromptProjection(cfg["width"])
        self.interaction = Interaction(cfg)
        gpt2 = transformers.GPT2Config(
            vocab_size=cfg["vocab_size"], n_positions=cfg["max_len"], n_embd=cfg["width"], n_layer=cfg["dec_layers"],
            n_head=cfg["dec_heads"], activation_function="gelu_new", layer_norm_epsilon=LAYERNORM_EPS,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
            bos_token_id=None, eos_token_id=None)  # the model's own ids: given to generate
        self.decoder = transformers.GPT2LMHeadModel(gpt2)

    def prefix(self, x, bags=None, slots=None):
        """x [B,D] (already mapped); bags [n,W] model token ids of prompt words (-1 pads a word);
        slots [B,M] index into bags, -1 empty (filled from slot 0). Returns the prefix [B,K,C]."""
        p = self.projector(x) + self.interaction.type_emb[: self.K]
        if slots is None or slots.shape[1] == 0:
            return self.interaction(p)[:, : self.K]
        wte = self.decoder.transformer.wte.weight
        valid = bags >= 0
        mean = (wte[bags.clamp(min=0)] * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
        q = self.prompt.proj(mean)
        used = slots >= 0
        words = torch.where(used[..., None], q[slots.clamp(min=0)], torch.zeros_like(q[:1]))  # empty slot: 0
        tokens = words + self.interaction.type_emb[self.K]
        h = torch.cat([p, tokens], 1)
        keys = torch.cat([torch.ones_like(used[:, :1]).expand(-1, self.K), used], 1)
        return self.interaction(h, keys[:, None, None, :])[:, : self.K]

    def forward(self, t, tokens, targets, bags=None, slots=None):
        """One training step's loss: t [B,D] text embeddings, tokens [B,L] caption ids, targets
        [B,K+L] (-1 ignored)."""
        prefix = self.prefix(self.gap(t), bags, slots)
        wte = self.decoder.transformer.wte.weight
        logits = self.decoder(inputs_embeds=torch.cat([prefix, wte[tokens]], 1)).logits
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-1)


def checkpoint_file(path):
    """A run directory (its newest checkpoint), a checkpoint directory or a model.safetensors."""
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(path, "model.safetensors")):
        return os.path.join(path, "model.safetensors")
    steps = sorted(glob.glob(os.path.join(path, "checkpoints", "step_*", "model.safetensors")))
    if not steps:
        sys.exit(f"tipcap_torch: {path}: no model.safetensors and no checkpoints/")
    return steps[-1]


def read_config(path):
    from safetensors import safe_open
    path = checkpoint_file(path)
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    if "tipcap_model_config" not in meta:
        sys.exit(f"tipcap_torch: {path}: no tipcap_model_config in the metadata: not a tipcap checkpoint")
    return json.loads(meta["tipcap_model_config"])


def load_checkpoint(path):
    """The model of a tipcap checkpoint (fp32, eval mode) and its GPT-2 id per token id."""
    from safetensors.torch import load_file
    cfg = read_config(path)
    path = checkpoint_file(path)
    tensors = load_file(path)
    model = TipcapTorch(cfg)
    V = cfg["vocab_size"]
    state = {}
    for name, t in tensors.items():
        if name == "decoder.vocab":
            continue
        if not name.startswith("decoder."):
            state["interaction.type_emb" if name == "interaction.type" else name] = t
            continue
        # decoder.h.N.attn.qkv.weight [3C,C] -> transformer.h.N.attn.c_attn.weight [C,3C] (Conv1D)
        hf = "decoder.transformer." + name[len("decoder."):]
        hf = hf.replace("attn.qkv.", "attn.c_attn.").replace("attn.proj.", "attn.c_proj.")
        hf = hf.replace("mlp.fc.", "mlp.c_fc.").replace("mlp.proj.", "mlp.c_proj.")
        if name in ("decoder.wte", "decoder.wpe"):
            hf += ".weight"
            t = t[:V] if name == "decoder.wte" else t
        elif t.dim() == 2:
            t = t.T.contiguous()
        state[hf] = t
    state["decoder.lm_head.weight"] = state["decoder.transformer.wte.weight"]
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(".attn.bias") and not k.endswith(".masked_bias")]
    if missing or unexpected:
        sys.exit(f"tipcap_torch: {path}: missing {missing}, unexpected {unexpected}")
    vocab = tensors["decoder.vocab"].tolist() if "decoder.vocab" in tensors else list(range(V))
    return model.eval(), vocab


def coco_image_id(key):
    """COCO's integer id when the key is a COCO file name (as infer/results.c), else the key."""
    m = re.fullmatch(r"COCO_.*_(\d+)\.[^._]+", os.path.basename(key))
    return int(m.group(1)) if m else key


def gpt2_tokenizer():
    gpt2 = os.path.join(ROOT, "data/gpt2")
    return transformers.GPT2Tokenizer(os.path.join(gpt2, "encoder.json"), os.path.join(gpt2, "vocab.bpe"))


def prompt_tensors(words_per_image, M, tok, index, device):
    """bags [n,W] of model ids of " word", slots [B,M] (as infer/prompts.c: at most M words)."""
    bags, slots = [], []
    for words in words_per_image:
        row = []
        for w in words[:M]:
            ids = [index.get(i, -1) for i in tok.encode(" " + w)]
            if min(ids) < 0:
                sys.exit(f'tipcap_torch: prompt word "{w}": a token of it is not in the model\'s vocabulary')
            row.append(len(bags))
            bags.append(ids)
        slots.append(row + [-1] * (M - len(row)))
    W = max((len(b) for b in bags), default=1)
    bags = torch.tensor([b + [-1] * (W - len(b)) for b in bags] or [[-1]], device=device)
    return bags, torch.tensor(slots, device=device)


def caption(a):
    import h5py
    device = torch.device(a.device)
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    model, vocab = load_checkpoint(a.checkpoint)
    model = model.to(device=device, dtype=dtype)
    cfg = model.cfg
    index = {g: i for i, g in enumerate(vocab)}
    with h5py.File(a.features, "r") as f:
        emb = torch.from_numpy(f["images/embeddings"][:]).float()
        keys = [k.decode() if isinstance(k, bytes) else k for k in f["images/keys"][:]]
    if emb.shape[1] != cfg["clip_dim"]:
        sys.exit(f"tipcap_torch: {a.features}: the images have D = {emb.shape[1]}, "
                 f"the checkpoint D = {cfg['clip_dim']}")
    if a.limit is not None:
        emb, keys = emb[: a.limit], keys[: a.limit]
    prompts = [[] for _ in keys]
    if a.prompts:
        given = json.load(open(a.prompts))
        position = {k: i for i, k in enumerate(keys)}
        for k, words in given.items():
            if k in position:  # normalized as infer/prompts.c: ASCII lower case, one space between words
                prompts[position[k]] = [" ".join("".join(c.lower() if c.isascii() else c for c in w).split())
                                        for w in words]
    max_len = a.max_len or min(cfg["max_len"] - cfg["prefix_len"], 30)
    max_len = min(max_len, cfg["max_len"] - cfg["prefix_len"])
    eos = [index[GPT2_EOT]] + ([index[GPT2_PERIOD]] if a.stop_at_period and GPT2_PERIOD in index else [])
    gen = transformers.GenerationConfig(
        max_new_tokens=max_len, num_beams=a.beam, do_sample=False, length_penalty=a.length_penalty,
        early_stopping="never", no_repeat_ngram_size=a.no_repeat_ngram, eos_token_id=eos, pad_token_id=eos[0],
        return_dict_in_generate=True, output_scores=a.with_scores)
    tok = gpt2_tokenizer()
    captions, scores = [], []
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    with torch.no_grad():
        for first in range(0, len(keys), a.batch):
            x = emb[first: first + a.batch].to(device=device, dtype=dtype)
            bags = slots = None
            if any(prompts[first: first + a.batch]):
                bags, slots = prompt_tensors(prompts[first: first + a.batch], cfg["max_prompts"], tok, index, device)
            prefix = model.prefix(x, bags, slots)
            mask = torch.ones(prefix.shape[:2], dtype=torch.long, device=device)
            out = model.decoder.generate(inputs_embeds=prefix, attention_mask=mask, generation_config=gen)
            if not a.with_scores:  # scores cost time: only when asked for
                batch_scores = [None] * len(out.sequences)
            elif a.beam == 1:  # sum of the log-probabilities of the tokens up to the terminal one
                logp = torch.stack([s.float().log_softmax(-1) for s in out.scores], 1)
                chosen = logp.gather(2, out.sequences[:, :, None])[..., 0]
                is_end = torch.isin(out.sequences, torch.tensor(eos, device=device)).long()
                live = (torch.cumsum(is_end, 1) - is_end) == 0
                batch_scores = (chosen * live).sum(1).tolist()
            else:
                batch_scores = out.sequences_scores.float().tolist()
            for row, score in zip(out.sequences.tolist(), batch_scores):
                ids = []
                for t in row:
                    if t == eos[0]:
                        break
                    ids.append(vocab[t])
                    if t in eos:
                        break
                captions.append(tok.decode(ids).strip())
                scores.append(score)
    sync()
    elapsed = time.perf_counter() - start
    print(f"{len(keys)} captions in {elapsed:.1f} s ({len(keys) / elapsed:.1f} images/s, beam {a.beam}, "
          f"transformers {transformers.__version__}, {device.type} {a.dtype})", flush=True)
    results = []
    for i, k in enumerate(keys):
        r = {"image_id": coco_image_id(k), "caption": captions[i]}
        if a.with_scores:
            r["score"] = scores[i]
            r["prompts"] = prompts[i][: cfg["max_prompts"]]
        results.append(r)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    os.replace(tmp, a.out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    c = sub.add_parser("caption", help="caption images with Hugging Face generate")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--features", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--beam", type=int, default=5)
    c.add_argument("--max-len", type=int, default=0)
    c.add_argument("--length-penalty", type=float, default=0.0)
    c.add_argument("--no-repeat-ngram", type=int, default=0)
    c.add_argument("--no-stop-at-period", dest="stop_at_period", action="store_false")
    c.add_argument("--prompts")
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--limit", type=int)
    c.add_argument("--device", default="cpu")
    c.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    c.add_argument("--with-scores", action="store_true")
    k = sub.add_parser("config", help="print one key of a checkpoint's model config")
    k.add_argument("--checkpoint", required=True)
    k.add_argument("--key", required=True)
    a = ap.parse_args()
    if a.command == "config":
        cfg = read_config(a.checkpoint)
        if a.key not in cfg:
            sys.exit(f"tipcap_torch: the model config has no key {a.key} (it has {', '.join(cfg)})")
        print(cfg[a.key])
        return
    if not 1 <= a.beam <= 10:
        sys.exit(f"tipcap_torch: --beam {a.beam}: must be 1..10")
    caption(a)


if __name__ == "__main__":
    main()
