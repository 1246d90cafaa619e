#!/usr/bin/env python3
"""Trains the gpt example on one GPU in cohort and in PyTorch (eager), alternately in one run, and
prints step time and tokens/s for both, the ratio (goal: cohort >= 1.0x PyTorch) and the peak GPU
memory of each.

    benchmarks/training/compare_gpu.py --build build [--reps 3] [--configs example large]
                                       [--dtypes f32 bf16] [--large-batch 16] [--json out.json]

Configurations (the same model, data shapes, optimizer and batch on both sides):
  example  the gpt example as it is: d_model 128, 2 layers, 4 heads, context 64, batch 16
  large    one that fills a GPU: d_model 768, 12 layers, 12 heads, context 512, batch --large-batch
Dtypes: f32 (parameters and math in f32; TF32 off on both sides, their default) and bf16 (f32
parameters, forward and loss under autocast to bf16: cohort's --amp bf16, torch.autocast).

Each (configuration, dtype) runs cohort and PyTorch alternately `reps` times (A B A B ...) and
reports medians; bf16 rows add cohort with its unfused attention (COHORT_CUDA_FLASH_ATTENTION=0) as
a third contender (A B C A B C ...), unless --no-unfused. Both sides copy each batch from pinned host memory with non_blocking, read the
loss back every step, clip gradients to norm 1 and step AdamW; the clock starts after the warm-up
steps with the GPU idle and stops when it is idle again. PyTorch's attention is
F.scaled_dot_product_attention (fused, torch >= 2.0) unless --torch-attention naive (or an older
torch) asks for softmax(q k^T) v op by op. The PyTorch side runs with --python (default: this
interpreter), which needs a CUDA build of torch (2.x; Debian's 1.13 works where it has CUDA).

Without a GPU (or without a CUDA torch, or with a cohort built without CUDA) it says what is
missing and exits with status 77 (skipped), without running anything.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {
    "example": dict(d_model=128, layers=2, heads=4, context=64, batch=16, steps=60, warmup=10),
    "large": dict(d_model=768, layers=12, heads=12, context=512, batch=16, steps=30, warmup=5),
}
AMP = {"f32": "none", "bf16": "bf16"}
SKIP = 77


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON line in output:\n" + text)


def probe_torch(python):
    """(ok, description): whether `python` imports a torch that sees a GPU, and what it has."""
    code = ("import json, torch, torch.nn.functional as F; "
            "ok = torch.cuda.is_available(); "
            "print(json.dumps({'ok': ok, 'version': torch.__version__, 'cuda': torch.version.cuda, "
            "'sdpa': hasattr(F, 'scaled_dot_product_attention'), "
            "'name': torch.cuda.get_device_name(0) if ok else ''}))")
    try:
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"cannot run {python}: {e}"
    if r.returncode != 0:
        return None, f"{python} cannot import torch: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}"
    info = json.loads(r.stdout.strip().splitlines()[-1])
    if not info["ok"]:
        return None, (f"torch {info['version']} in {python} sees no GPU (built with CUDA {info['cuda']}); "
                      "run on a machine with an NVIDIA GPU and a CUDA build of torch")
    return info, ""


def probe_cohort(gpt):
    """'' when cohort's gpt example trains one step on the GPU, else why not."""
    if not os.path.exists(gpt):
        return f"{gpt} does not exist; build the examples first (cmake --build BUILD --target gpt)"
    r = subprocess.run([gpt, "--device", "cuda", "--steps", "1", "--warmup-steps", "0", "--log-every", "1000000"],
                       capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return (r.stderr.strip() or r.stdout.strip() or f"exit status {r.returncode}").splitlines()[-1]
    return ""


def run(cmd, env=None):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800,
                       env=None if env is None else {**os.environ, **env})
    if r.returncode != 0:
        raise SystemExit(f"compare_gpu: this command failed (exit {r.returncode}):\n  {' '.join(cmd)}\n"
                         f"{r.stdout[-2000:]}{r.stderr[-4000:]}")
    d = last_json(r.stdout)
    return d["tokens_per_second"], d.get("peak_gpu_mib", float("nan"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build", help="cohort build directory (holds examples/gpt)")
    p.add_argument("--python", default=sys.executable, help="the Python with a CUDA build of torch")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--configs", nargs="+", default=["example", "large"], choices=sorted(CONFIGS))
    p.add_argument("--dtypes", nargs="+", default=["f32", "bf16"], choices=sorted(AMP))
    p.add_argument("--large-batch", type=int, default=16, help="batch of the large configuration")
    p.add_argument("--steps", type=int, default=0, help="steps per run (default: per configuration)")
    p.add_argument("--torch-attention", default="sdpa", choices=["sdpa", "naive"])
    p.add_argument("--no-unfused", action="store_true",
                   help="bf16 rows: skip the third contender, cohort with its unfused attention "
                        "(COHORT_CUDA_FLASH_ATTENTION=0), which shows what the fused kernels gain")
    p.add_argument("--json", help="also write the results here")
    a = p.parse_args()
    CONFIGS["large"]["batch"] = a.large_batch

    info, why = probe_torch(a.python)
    if info is None:
        print(f"compare_gpu: skipped: {why}")
        return SKIP
    gpt = os.path.join(a.build, "examples", "gpt")
    why = probe_cohort(gpt)
    if why:
        print(f"compare_gpu: skipped: cohort cannot train on the GPU: {why}")
        return SKIP
    sdpa = a.torch_attention == "sdpa" and info["sdpa"]
    print(f"GPU {info['name']}; torch {info['version']} (CUDA {info['cuda']}), attention "
          f"{'F.scaled_dot_product_attention' if sdpa else 'softmax(q k^T) v op by op'}; {a.reps} reps, medians")
    print(f"{'config':8} {'dtype':5} {'batch':>5} {'cohort ms':>10} {'torch ms':>10} {'cohort tok/s':>13} "
          f"{'torch tok/s':>12} {'ratio':>6} {'cohort MiB':>11} {'torch MiB':>10} {'unfused ms':>10}")
    results = []
    for name in a.configs:
        c = CONFIGS[name]
        steps = a.steps or c["steps"]
        size = ["--d-model", str(c["d_model"]), "--layers", str(c["layers"]), "--heads", str(c["heads"]),
                "--context", str(c["context"])]
        common = ["--steps", str(steps), "--warmup-steps", str(c["warmup"]), "--batch-size", str(c["batch"]),
                  "--device", "cuda"] + size
        for dtype in a.dtypes:
            amp = ["--amp", AMP[dtype]]
            cohort_cmd = [gpt] + common + amp + ["--log-every", "1000000"]
            torch_cmd = ([a.python, os.path.join(HERE, "torch_models.py"), "--model", "gpt"] + common + amp +
                         (["--sdpa"] if sdpa else []))
            c_rates, t_rates, c_mem, t_mem, u_rates = [], [], [], [], []
            unfused = dtype != "f32" and not a.no_unfused  # fused attention applies to 16-bit q, k, v
            for _ in range(a.reps):
                r, m = run(cohort_cmd)
                c_rates.append(r)
                c_mem.append(m)
                r, m = run(torch_cmd)
                t_rates.append(r)
                t_mem.append(m)
                if unfused:
                    u_rates.append(run(cohort_cmd, {"COHORT_CUDA_FLASH_ATTENTION": "0"})[0])
            cr, tr = statistics.median(c_rates), statistics.median(t_rates)
            tokens = c["batch"] * c["context"]
            row = {"config": name, "dtype": dtype, "batch": c["batch"], "context": c["context"],
                   "d_model": c["d_model"], "layers": c["layers"], "heads": c["heads"],
                   "cohort_tokens_per_second": cr, "pytorch_tokens_per_second": tr, "ratio": cr / tr,
                   "cohort_step_ms": 1e3 * tokens / cr, "pytorch_step_ms": 1e3 * tokens / tr,
                   "cohort_peak_gpu_mib": max(c_mem), "pytorch_peak_gpu_mib": max(t_mem), "reps": a.reps,
                   "torch": info["version"], "torch_attention": "sdpa" if sdpa else "naive", "gpu": info["name"]}
            if u_rates:
                row["cohort_unfused_step_ms"] = 1e3 * tokens / statistics.median(u_rates)
            results.append(row)
            u = f"{row['cohort_unfused_step_ms']:10.2f}" if u_rates else f"{'-':>10}"
            print(f"{name:8} {dtype:5} {c['batch']:5d} {row['cohort_step_ms']:10.2f} {row['pytorch_step_ms']:10.2f} "
                  f"{cr:13.0f} {tr:12.0f} {cr / tr:6.2f} {max(c_mem):11.0f} {max(t_mem):10.0f} {u}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
