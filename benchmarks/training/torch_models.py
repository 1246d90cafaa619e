#!/usr/bin/python3
"""The three example models in PyTorch, trained on synthetic data for a throughput figure.

Same architectures, optimizers, batch sizes and dtype as cohort's examples/{mlp,cnn,gpt}; prints
one JSON line like the examples do: {"step", "loss", "samples_per_second" or "tokens_per_second",
"peak_rss_mib"}. Run with Debian's /usr/bin/python3 (python3-torch).

On a GPU (--device cuda, a CUDA build of torch): the model on the GPU, each batch copied from
pinned memory with non_blocking (as cohort's loader does), --amp bf16/f16 through torch.autocast
(f16 with a GradScaler), the clock started and stopped with the GPU idle; the JSON line then also
has "device", "amp" and "peak_gpu_mib". --d-model/--layers/--heads/--context size the gpt as
cohort's gpt example flags do; --sdpa uses F.scaled_dot_product_attention (torch >= 2.0) instead of
the explicit softmax(q k^T) v. Defaults are the CPU benchmark's, unchanged.
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
    def __init__(self, c, h, sdpa=False):
        super().__init__()
        self.h = h
        self.sdpa = sdpa
        self.qkv = nn.Linear(c, 3 * c)
        self.proj = nn.Linear(c, c)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.h, c // self.h).transpose(1, 2) for z in (q, k, v))
        if self.sdpa:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // self.h))
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            att = F.softmax(att.masked_fill(mask, float("-inf")), dim=-1)
            y = att @ v
        y = y.transpose(1, 2).reshape(b, t, c)
        return self.proj(y)


class Block(nn.Module):
    def __init__(self, c, h, sdpa=False):
        super().__init__()
        self.ln1, self.attn, self.ln2 = nn.LayerNorm(c), Attention(c, h, sdpa), nn.LayerNorm(c)
        self.fc, self.fc_proj = nn.Linear(c, 4 * c), nn.Linear(4 * c, c)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class Gpt(nn.Module):
    def __init__(self, vocab=256, context=64, c=128, heads=4, layers=2, sdpa=False):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, c), nn.Embedding(context, c)
        self.blocks = nn.Sequential(*[Block(c, heads, sdpa) for _ in range(layers)])
        self.ln_f, self.head = nn.LayerNorm(c), nn.Linear(c, vocab, bias=False)

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        return self.head(self.ln_f(self.blocks(x)))


BATCH = {"mlp": 128, "cnn": 64, "gpt": 16}


def build(name, gpt_size=None, device="cpu"):
    """The example's model and its optimizer, configured as cohort's examples/<name> does.
    gpt_size: Gpt's keyword arguments (context, c, heads, layers, sdpa); the example's defaults when None.
    The model is moved to `device` before its optimizer is made (its state is made there)."""
    if name == "gpt":
        model = Gpt(**(gpt_size or {})).to(device)
        return model, torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    model = (mlp() if name == "mlp" else cnn()).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.05 if name == "mlp" else 0.02, momentum=0.9)


def synthetic_batches(name, batch, rank=0, world=1, context=64):
    """step -> (inputs, targets): a cycle of synthetic batches of the example's shapes, `batch` rows
    each. With world > 1, batches of world * batch rows are generated (the same on every rank, from
    the current seed) and rank r keeps rows r, r + world, ... (DistributedSampler's split)."""
    rows = batch * world
    part = lambda t: t if world == 1 else t[rank::world].contiguous()
    if name == "gpt":
        data = torch.randint(0, 256, (64, rows, context + 1))
        data = [part(data[i]) for i in range(64)]
        return lambda i: (data[i % 64][:, :-1], data[i % 64][:, 1:])
    shape = (rows, 784) if name == "mlp" else (rows, 3, 32, 32)
    xs = [part(torch.rand(shape)) for _ in range(16)]
    ys = [part(torch.randint(0, 10, (rows,))) for _ in range(16)]
    return lambda i: (xs[i % 16], ys[i % 16])


def train_step(name, model, opt, x, y, autocast_dtype=None, scaler=None):
    """One step as the example takes it (zero_grad, forward, loss, backward, clip for gpt, step);
    with autocast_dtype, forward and loss under torch.autocast on x's device, and with a GradScaler
    the scaled backward, unscale before clipping, a step skipped on overflow and the scale update."""
    opt.zero_grad(set_to_none=True)
    if autocast_dtype is None:
        out = model(x)
        loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    else:
        with torch.autocast(device_type=x.device.type, dtype=autocast_dtype):
            out = model(x)
            loss = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(opt)
    if name == "gpt":
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    if scaler is not None:
        scaler.step(opt)
        scaler.update()
    else:
        opt.step()
    return loss


def make_grad_scaler():
    """torch.amp.GradScaler("cuda") where it exists (torch >= 2.3), else torch.cuda.amp.GradScaler."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", choices=["mlp", "cnn", "gpt"], required=True)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--warmup-steps", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--amp", default="none", choices=["none", "bf16", "f16"], help="autocast dtype (cuda only)")
    p.add_argument("--d-model", type=int, default=128, help="gpt width")
    p.add_argument("--layers", type=int, default=2, help="gpt blocks")
    p.add_argument("--heads", type=int, default=4, help="gpt attention heads")
    p.add_argument("--context", type=int, default=64, help="gpt tokens per example")
    p.add_argument("--sdpa", action="store_true", help="gpt attention through F.scaled_dot_product_attention")
    a = p.parse_args()
    if a.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("torch_models.py: --device cuda, but this torch sees no GPU "
                         f"(torch {torch.__version__}, CUDA {torch.version.cuda}); use --device cpu")
    if a.amp != "none" and a.device != "cuda":
        raise SystemExit(f"torch_models.py: --amp {a.amp} needs --device cuda")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    batch = a.batch_size or BATCH[a.model]
    device = torch.device(a.device)
    gpt_size = dict(context=a.context, c=a.d_model, heads=a.heads, layers=a.layers, sdpa=a.sdpa)
    model, opt = build(a.model, gpt_size, device)
    make = synthetic_batches(a.model, batch, context=a.context)
    cuda = device.type == "cuda"
    autocast_dtype = {"none": None, "bf16": torch.bfloat16, "f16": torch.float16}[a.amp]
    scaler = make_grad_scaler() if a.amp == "f16" else None
    if cuda:
        # Pinned host batches (pinned once: the cycle repeats every 64 steps), copied to the GPU
        # every step, as cohort's pinning loader and Batch::to(device, non_blocking) do.
        host, pinned = make, {}

        def make(i):
            if i % 64 not in pinned:
                pinned[i % 64] = tuple(t.contiguous().pin_memory() for t in host(i))
            return tuple(t.to(device, non_blocking=True) for t in pinned[i % 64])

    start, samples, loss_value = None, 0, 0.0
    for step in range(1, a.steps + 1):
        x, y = make(step)
        loss_value = train_step(a.model, model, opt, x, y, autocast_dtype, scaler).item()
        if step == a.warmup_steps:
            if cuda:
                torch.cuda.synchronize()  # the warm-up's work is done: start the clock on an idle GPU
            start = time.perf_counter()
        elif step > a.warmup_steps:
            samples += y.numel()
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    key = "tokens_per_second" if a.model == "gpt" else "samples_per_second"
    result = {"step": a.steps, "loss": loss_value, key: samples / seconds,
              "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}
    if a.device != "cpu":
        result.update(device=f"cuda:{torch.cuda.current_device()}", amp=a.amp,
                      peak_gpu_mib=torch.cuda.max_memory_allocated() / 1048576.0)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
