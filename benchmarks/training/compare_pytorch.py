#!/usr/bin/python3
"""Trains the three example models in cohort and in PyTorch, alternately in one run, and prints
throughput for both, the ratio, and peak memory, for each thread count.

    benchmarks/training/compare_pytorch.py --build build [--reps 3] [--threads 1 2] [--models mlp cnn gpt]

The machine is noisy, so each (model, threads) pair runs cohort and PyTorch alternately `reps`
times (A B A B ...) and reports medians. PyTorch runs with whatever BLAS Debian's alternatives
select (OpenBLAS once libopenblas0-openmp is installed; the script prints which one it loaded).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BATCH = {"mlp": 128, "cnn": 64, "gpt": 16}
UNIT = {"mlp": "samples/s", "cnn": "samples/s", "gpt": "tokens/s"}


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no JSON line in output:\n" + text)


def run(cmd, threads, wait_policy):
    # Both sides get the same OpenMP settings. PASSIVE (idle threads sleep) is the fair choice on a
    # shared machine: with ACTIVE spinning, a pre-empted thread stalls every parallel region.
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY=wait_policy)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    d = last_json(out)
    rate = d.get("samples_per_second", d.get("tokens_per_second"))
    return rate, d["peak_rss_mib"]


def torch_blas():
    code = "import torch, re; torch.ones(2,2)@torch.ones(2,2); print(' '.join(sorted({re.sub(r'.*/', '', l.split()[-1]) for l in open('/proc/self/maps') if 'blas' in l.lower()})))"
    return subprocess.run(["/usr/bin/python3", "-c", code], capture_output=True, text=True).stdout.strip()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build", help="cohort build directory (holds examples/)")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--models", nargs="+", default=["mlp", "cnn", "gpt"])
    p.add_argument("--steps", type=int, default=0, help="steps per run (default: per model)")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--omp-wait-policy", default="PASSIVE", choices=["PASSIVE", "ACTIVE"],
                   help="OMP_WAIT_POLICY for both sides (default PASSIVE)")
    a = p.parse_args()
    steps = {"mlp": 60, "cnn": 30, "gpt": 40}
    print(f"PyTorch BLAS libraries loaded: {torch_blas() or 'none found'}; OMP_WAIT_POLICY={a.omp_wait_policy}; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'model':5} {'thr':>3} {'cohort':>12} {'pytorch':>12} {'unit':10} {'ratio':>6} "
          f"{'cohort MiB':>10} {'torch MiB':>10}")
    results = []
    for model in a.models:
        for t in a.threads:
            n = a.steps or steps[model]
            common = ["--steps", str(n), "--batch-size", str(BATCH[model]), "--threads", str(t), "--warmup-steps", "5"]
            cohort_cmd = [os.path.join(a.build, "examples", model)] + common + ["--log-every", "1000000"]
            torch_cmd = ["/usr/bin/python3", os.path.join(HERE, "torch_models.py"), "--model", model] + common
            c_rates, t_rates, c_mem, t_mem = [], [], [], []
            for _ in range(a.reps):
                r, m = run(cohort_cmd, t, a.omp_wait_policy)
                c_rates.append(r)
                c_mem.append(m)
                r, m = run(torch_cmd, t, a.omp_wait_policy)
                t_rates.append(r)
                t_mem.append(m)
            c, tt = statistics.median(c_rates), statistics.median(t_rates)
            row = {"model": model, "threads": t, "cohort": c, "pytorch": tt, "ratio": c / tt, "unit": UNIT[model],
                   "cohort_peak_mib": max(c_mem), "pytorch_peak_mib": max(t_mem), "reps": a.reps}
            results.append(row)
            print(f"{model:5} {t:3d} {c:12.0f} {tt:12.0f} {UNIT[model]:10} {c / tt:6.2f} "
                  f"{max(c_mem):10.0f} {max(t_mem):10.0f}", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
