#!/usr/bin/env python3
"""The TIPCap training step of tipcap in PyTorch, for bench/bench_gpu.sh: the same model (MLP prefix
projector D -> H1 -> K*C, prompt tokens as the projected mean token embedding of each word, a
pre-LN bidirectional interaction encoder with key padding, transformers' GPT2LMHeadModel over
[prefix; caption]), the same shapes, AdamW, bf16 autocast. Prints tokens/s (decoder positions
B x (K + L) per second) and steps/s for eager and torch.compile.

usage: pytorch_tipcap.py [--batch 256] [--prefix 10] [--len 40] [--steps 30] [--warmup 10]
needs: torch (CUDA), transformers
"""
import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import transformers


class InteractionBlock(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
        self.attn = nn.MultiheadAttention(C, H, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(approximate="tanh"), nn.Linear(4 * C, C))

    def forward(self, x, pad):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class TIPCap(nn.Module):
    def __init__(self, D=512, K=10, C=768, H1=3840, layers=2, heads=12, max_len=64):
        super().__init__()
        self.K = K
        self.projector = nn.Sequential(nn.Linear(D, H1), nn.GELU(approximate="tanh"), nn.Linear(H1, K * C))
        self.prompt = nn.Linear(C, C)
        self.type = nn.Parameter(torch.zeros(K + 1, C))
        self.blocks = nn.ModuleList(InteractionBlock(C, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(C)
        cfg = transformers.GPT2Config(n_positions=max_len, n_embd=C, n_layer=12, n_head=12)
        self.gpt = transformers.GPT2LMHeadModel(cfg)

    def forward(self, x, prompt_ids, prompt_pad, tokens, targets):
        B, C = x.shape[0], self.type.shape[1]
        p = self.projector(x).view(B, self.K, C) + self.type[: self.K]
        wte = self.gpt.transformer.wte.weight
        q = self.prompt(wte[prompt_ids].mean(2)) + self.type[self.K]  # [B, M, C], one word of 2 ids per slot
        h = torch.cat([p, q], 1)
        pad = torch.cat([torch.zeros(B, self.K, dtype=torch.bool, device=x.device), prompt_pad], 1)
        for blk in self.blocks:
            h = blk(h, pad)
        prefix = self.ln_f(h[:, : self.K])
        embeds = torch.cat([prefix, wte[tokens]], 1)
        logits = self.gpt(inputs_embeds=embeds).logits
        return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-1)


def bench(model, batch, steps, warmup, label):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)
    x, pids, ppad, tokens, targets = batch
    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(x, pids, ppad, tokens, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    B, T = tokens.shape[0], tokens.shape[1] + model_k(model)
    print(f"pytorch {label}: {1 / dt:.2f} steps/s, {B * T / dt:.0f} tokens/s (B {B} x T {T})", flush=True)


def model_k(model):
    return getattr(model, "_orig_mod", model).K


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--prefix", type=int, default=10)
    ap.add_argument("--len", type=int, default=40)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    a = ap.parse_args()
    torch.manual_seed(0)
    dev = "cuda"
    B, K, L, M = a.batch, a.prefix, a.len, 8
    x = F.normalize(torch.randn(B, 512, device=dev), dim=-1)
    pids = torch.randint(0, 50257, (B, M, 2), device=dev)
    ppad = torch.rand(B, M, device=dev) < 0.5
    tokens = torch.randint(0, 50257, (B, L), device=dev)
    targets = torch.cat([torch.full((B, K - 1), -1, device=dev), tokens, torch.full((B, 1), 50256, device=dev)], 1)
    batch = (x, pids, ppad, tokens, targets)
    model = TIPCap(K=K, max_len=K + L).to(dev)
    bench(model, batch, a.steps, a.warmup, "eager")
    bench(torch.compile(model), batch, a.steps, a.warmup, "torch.compile")


if __name__ == "__main__":
    main()
