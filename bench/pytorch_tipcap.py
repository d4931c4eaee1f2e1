#!/usr/bin/env python3
"""The TIPCap training step in PyTorch, for bench/bench_gpu.sh: bench/tipcap_torch.py's TipcapTorch
(tipcap's model and parameter names; the decoder is transformers' GPT2LMHeadModel, 124M) with the
shapes of the tipcap-train run it is compared with: Gaussian mapping (sigma^2 = 0.016, fixed), MLP
projector 512 -> 3840 -> K*768, a 2-layer interaction encoder over K prefix tokens and M = 8 prompt
slots (half of them used, words of one or two tokens), captions of L tokens, fused AdamW, gradient
clipping at 1, bf16 autocast. Prints steps/s and tokens/s (decoder positions B x (K + L) per
second) for eager and torch.compile.

usage: pytorch_tipcap.py [--batch 256] [--prefix 10] [--len 40] [--steps 30] [--warmup 10]
needs: torch (CUDA), transformers
"""
import argparse
import math
import time

import torch

from tipcap_torch import TipcapTorch


def bench(model, batch, steps, warmup, label):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    t, tokens, targets, bags, slots = batch

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(t, tokens, targets, bags, slots)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - start) / steps
    B, T = targets.shape
    print(f"pytorch {label}: {1 / dt:.2f} steps/s, {B * T / dt:.0f} tokens/s (B {B} x T {T})", flush=True)


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
    B, K, L, M, V = a.batch, a.prefix, a.len, 8, 50257
    cfg = dict(clip_dim=512, prefix_len=K, width=768, vocab_size=V, max_len=K + L, dec_layers=12, dec_heads=12,
               int_layers=2, int_heads=12, map_layers=0, proj_hidden=3840, max_prompts=M)
    model = TipcapTorch(cfg).to(dev).train()
    with torch.no_grad():
        model.gap.chol.copy_(math.sqrt(0.016) * torch.eye(512))
    model.gap.requires_grad_(False)
    t = torch.nn.functional.normalize(torch.randn(B, 512, device=dev), dim=-1)
    tokens = torch.randint(0, V - 1, (B, L), device=dev)
    targets = torch.cat([torch.full((B, K - 1), -1, device=dev), tokens, torch.full((B, 1), V - 1, device=dev)], 1)
    n_words = B * M // 2
    bags = torch.randint(0, V - 1, (n_words, 2), device=dev)
    bags[torch.rand(n_words, device=dev) < 0.5, 1] = -1
    slots = torch.full((B, M), -1, device=dev)
    slots[:, : M // 2] = torch.arange(n_words, device=dev).view(B, M // 2)
    batch = (t, tokens, targets, bags, slots)
    bench(model, batch, a.steps, a.warmup, "eager")
    bench(torch.compile(model), batch, a.steps, a.warmup, "torch.compile")


if __name__ == "__main__":
    main()
