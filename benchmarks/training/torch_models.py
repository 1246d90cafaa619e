#!/usr/bin/python3
"""The three example models in PyTorch, trained on synthetic data for a throughput figure.

Same architectures, optimizers, batch sizes and dtype as cohort's examples/{mlp,cnn,gpt}; prints
one JSON line like the examples do: {"step", "loss", "samples_per_second" or "tokens_per_second",
"peak_rss_mib"}. Run with Debian's /usr/bin/python3 (python3-torch).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))


def cnn():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


class Attention(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.h = h
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.h, c // self.h).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // self.h))
        mask = torch.ones(t, t, dtype=torch.bool).triu(1)
        att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, c, h):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(c), Attention(c, h), nn.LayerNorm(c)
        self.fc, self.fc_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab=256, context=64, c=128, heads=4, layers=2):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, c), nn.Embedding(context, c)
        self.blocks = nn.Sequential(*[Block(c, heads) for _ in range(layers)])
        self.ln_f, self.head = nn.LayerNorm(c), nn.Linear(c, vocab, bias=False)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        return self.head(self.ln_f(self.blocks(x)))


BATCH = {"mlp": 128, "cnn": 64, "gpt": 16}


def build(name):
    """The example's model and its optimizer, configured as cohort's examples/<name> does."""
    if name == "gpt":
        model = Gpt()
        return model, torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    model = mlp() if name == "mlp" else cnn()
    return model, torch.optim.SGD(model.parameters(), lr=0.05 if name == "mlp" else 0.02, momentum=0.9)


def synthetic_batches(name, batch, rank=0, world=1):
    """step -> (inputs, targets): a cycle of synthetic batches of the example's shapes, `batch` rows
    each. With world > 1, batches of world * batch rows are generated (the same on every rank, from
    the current seed) and rank r keeps rows r, r + world, ... (DistributedSampler's split)."""
    rows = batch * world
    part = lambda t: t if world == 1 else t[rank::world].contiguous()
    if name == "gpt":
        data = torch.randint(0, 256, (64, rows, 65))
        data = [part(data[i]) for i in range(64)]
        return lambda i: (data[i % 64][:, :-1], data[i % 64][:, 1:])
    shape = (rows, 784) if name == "mlp" else (rows, 3, 32, 32)
    xs = [part(torch.rand(shape)) for _ in range(16)]
    ys = [part(torch.randint(0, 10, (rows,))) for _ in range(16)]
    return lambda i: (xs[i % 16], ys[i % 16])


def train_step(name, model, opt, x, y):
    """One step as the example takes it (zero_grad, forward, loss, backward, clip for gpt, step)."""
    opt.zero_grad(set_to_none=True)
    out = model(x)
    loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    loss.backward()
    if name == "gpt":
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", choices=["mlp", "cnn", "gpt"], required=True)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    batch = a.batch_size or BATCH[a.model]
    model, opt = build(a.model)
    make = synthetic_batches(a.model, batch)

    start, samples, loss_value = None, 0, 0.0
    for step in range(1, a.steps + 1):
        x, y = make(step)
        loss_value = train_step(a.model, model, opt, x, y).item()
        if step == a.warmup_steps:
            start = time.perf_counter()
        elif step > a.warmup_steps:
            samples += y.numel()
    seconds = time.perf_counter() - start
    key = "tokens_per_second" if a.model == "gpt" else "samples_per_second"
    print(json.dumps({"step": a.steps, "loss": loss_value, key: samples / seconds,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}))


if __name__ == "__main__":
    main()
