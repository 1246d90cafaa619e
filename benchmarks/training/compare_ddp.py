#!/usr/bin/python3
"""Data-parallel training of the three example models: cohort's Ddp against PyTorch's
DistributedDataParallel (gloo), 2 ranks x 1 thread, alternately in one run.

    benchmarks/training/compare_ddp.py [--build build] [--reps 3] [--models mlp,cnn,gpt]

Each repetition runs, per model, these five (the order rotated by one each repetition):
  cohort ddp          mpirun -np 2 --bind-to core cohort-run examples/<model> --strategy ddp --threads 1 ...
  PyTorch DDP         2 processes of this script, gloo on 127.0.0.1, each pinned to its own core
  cohort no overlap   the first, with --no-overlap (every bucket all-reduced after backward)
  cohort 1 rank       mpirun -np 1 ... --strategy ddp
  PyTorch 1 rank      DDP with a world of one
and the table reports medians over the repetitions. Models, batch sizes (per rank), optimizers and
synthetic data shapes are those of compare_pytorch.py (torch_models.py); each PyTorch rank takes
rows rank, rank + 2, ... of the same synthetic global batch, as DistributedSampler would.

Throughputs are global (both ranks together: samples/s for mlp and cnn, tokens/s for gpt).
"comm wait" is cohort's time per step spent waiting, after backward ended, for gradient
all-reduces; "hidden" = 1 - wait(overlap) / wait(no overlap): the share of that wait which
overlapping all-reduces with backward removed. Scaling = 2-rank throughput / (2 x 1-rank).

Until the cohort side is built (scripts/dev.sh run), --torch-only runs the PyTorch half alone.
"""
import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from compare_pytorch import BATCH, UNIT, torch_blas  # noqa: E402  (no torch import at module level)

MODELS = ["mlp", "cnn", "gpt"]
# Steps per run, the warm-up included: 1.5-5 s of training per run on the project's 2-core VMs, so
# that one repetition of one model (5 runs, with their start-up) takes 10-20 s.
STEPS = {"mlp": 60, "cnn": 30, "gpt": 40}
WARMUP = 5
# The PyTorch ranks run under Debian's python3 (python3-torch), as in compare_pytorch.py, whichever
# python3 runs this script.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
ENV = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
       "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}


class BenchError(Exception):
    pass


def tail(text, lines=25):
    return "\n".join(text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------- cohort

def cohort_paths(build, model):
    return os.path.join(build, "launcher", "cohort-run"), os.path.join(build, "examples", model)


def check_cohort(build, models):
    missing = [p for m in models for p in cohort_paths(build, m) if not os.access(p, os.X_OK)]
    if missing:
        raise BenchError(
            f"not found (or not executable): {', '.join(sorted(set(missing)))}.\n"
            f"Build cohort first: scripts/dev.sh run (or cmake --build {build}), or point --build at a "
            f"build directory. --torch-only runs the PyTorch half without cohort.")
    if not shutil.which("mpirun"):
        raise BenchError("mpirun not found on PATH: install Open MPI (Debian: apt install openmpi-bin), "
                         "or run with --torch-only")


def cohort_run(build, model, ranks, batch, steps, warmup, overlap, timeout):
    """One cohort run; returns rank 0's summary (a dict)."""
    launcher, example = cohort_paths(build, model)
    cmd = ["mpirun", "-np", str(ranks), "--bind-to", "core", launcher, example,
           "--strategy", "ddp", "--threads", "1", "--steps", str(steps), "--warmup-steps", str(warmup),
           "--batch-size", str(batch), "--log-every", "1000"]
    if not overlap:
        cmd.append("--no-overlap")
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **ENV), timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}")
    if p.returncode != 0:
        hint = ""
        if re.search(r"strategy|no-overlap", p.stdout + p.stderr) and \
                re.search(r"not expected|unknown|invalid|not valid", p.stdout + p.stderr, re.I):
            hint = f"\n{example} has no --strategy ddp / --no-overlap: rebuild it (scripts/dev.sh run)."
        raise BenchError(f"exit status {p.returncode}: {' '.join(cmd)}\n{tail(p.stdout + p.stderr)}{hint}")
    # cohort-run prefixes each line with "[rank] "; rank 0's last line is the JSON summary.
    for line in reversed(p.stdout.splitlines()):
        m = re.match(r"^\[0\] (\{.*\})\s*$", line)
        if m:
            return json.loads(m.group(1))
    raise BenchError(f"no JSON line from rank 0 in the output of {' '.join(cmd)}:\n{tail(p.stdout)}")


# --------------------------------------------------------------------------------------- PyTorch

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torch_worker(a):
    """One rank of a PyTorch DDP run (this script started with --worker RANK,WORLD,CORE)."""
    rank, world, core = (int(x) for x in a.worker.split(","))
    os.sched_setaffinity(0, {core})  # before torch loads OpenMP, so it sees one core
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    import torch_models

    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    name = a.models
    model, opt = torch_models.build(name)
    ddp = DistributedDataParallel(model)  # default buckets: 25 MiB, the first 1 MiB
    make = torch_models.synthetic_batches(name, a.batch, rank, world)
    start, per_step = None, 0
    for step in range(1, a.steps + 1):
        x, y = make(step)
        torch_models.train_step(name, ddp, opt, x, y).item()
        if step == a.warmup:
            dist.barrier()
            start = time.perf_counter()
        per_step = y.numel()
    dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        key = "tokens_per_second" if name == "gpt" else "samples_per_second"
        print(json.dumps({"step": a.steps, key: world * per_step * (a.steps - a.warmup) / seconds}), flush=True)
    dist.destroy_process_group()


def torch_run(model, ranks, batch, steps, warmup, timeout):
    """One PyTorch DDP run of `ranks` processes; returns rank 0's summary."""
    cores = sorted(os.sched_getaffinity(0))
    env = dict(os.environ, **ENV, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    procs, logs = [], []
    for r in range(ranks):
        cmd = [PYTHON, os.path.abspath(__file__), "--worker", f"{r},{ranks},{cores[r % len(cores)]}",
               "--models", model, "--batch", str(batch), "--steps", str(steps), "--warmup", str(warmup)]
        logs.append(tempfile.TemporaryFile("w+"))
        procs.append(subprocess.Popen(cmd, stdout=logs[-1], stderr=subprocess.STDOUT, text=True, env=env))
    # Wait for all of them; the first that fails (or the time limit) ends the others, which would
    # otherwise wait forever in a collective for it.
    deadline, failed = time.monotonic() + timeout, None
    while failed is None and any(p.poll() is None for p in procs):
        failed = next((r for r, p in enumerate(procs) if p.poll() not in (None, 0)), None)
        if failed is None and time.monotonic() > deadline:
            failed = "timeout"
        time.sleep(0.05)
    failed = next((r for r, p in enumerate(procs) if p.poll() not in (None, 0)), failed)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    outs = []
    for f in logs:
        f.seek(0)
        outs.append(f.read())
        f.close()
    if failed == "timeout":
        raise BenchError(f"PyTorch DDP ({model}, {ranks} ranks) timed out after {timeout} s:\n{tail(outs[0])}")
    if failed is not None:
        raise BenchError(f"PyTorch rank {failed} of {ranks} failed ({model}):\n{tail(outs[failed])}")
    for line in reversed(outs[0].splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise BenchError(f"no JSON line from PyTorch rank 0 ({model}):\n{tail(outs[0])}")


# ------------------------------------------------------------------------------------------ main

def rate(d):
    return d.get("samples_per_second", d.get("tokens_per_second"))


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec, none="-"):
    return none if x is None else format(x, spec)


def bench_model(a, model):
    batch, steps, warmup = BATCH[model], a.steps or STEPS[model], a.warmup
    runs = {k: [] for k in ("cohort", "cohort_no_overlap", "torch", "cohort_1", "torch_1")}
    wait = {"cohort": [], "cohort_no_overlap": []}
    for rep in range(1, a.reps + 1):
        plan = [("cohort", 2, True), ("torch", 2, None), ("cohort_no_overlap", 2, False),
                ("cohort_1", 1, True), ("torch_1", 1, None)]
        # Rotated each rep, so no configuration always runs first or always after the same one
        # (on this VM a run right after a 1-rank run, or after idling, was measurably slower).
        shift = (rep - 1) % len(plan)
        plan = plan[shift:] + plan[:shift]
        for key, ranks, overlap in plan:
            if a.torch_only and key.startswith("cohort"):
                continue
            if key.startswith("torch"):
                d = torch_run(model, ranks, batch, steps, warmup, a.timeout)
            else:
                d = cohort_run(a.build, model, ranks, batch, steps, warmup, overlap, a.timeout)
                if key in wait:
                    wait[key].append(d.get("comm_wait_ms_per_step"))
            runs[key].append(rate(d))
        line = "  ".join(f"{k} {v[-1]:,.0f}" for k, v in runs.items() if v)
        print(f"# {model} rep {rep}/{a.reps}: {line}  (load {os.getloadavg()[0]:.1f})", flush=True)
    m = {k: med(v) for k, v in runs.items()}
    w = {k: med(v) for k, v in wait.items()}
    ratio = lambda x, y: x / y if x is not None and y else None
    row = {
        "model": model, "unit": UNIT[model], "batch_per_rank": batch, "ranks": 2, "threads_per_rank": 1,
        "steps": steps, "warmup_steps": warmup, "reps": a.reps,
        "cohort_ddp": m["cohort"], "cohort_ddp_no_overlap": m["cohort_no_overlap"], "pytorch_ddp": m["torch"],
        "ratio": ratio(m["cohort"], m["torch"]),
        "cohort_comm_wait_ms": w["cohort"], "cohort_comm_wait_ms_no_overlap": w["cohort_no_overlap"],
        "hidden_fraction": (1 - w["cohort"] / w["cohort_no_overlap"])
        if w["cohort"] is not None and w["cohort_no_overlap"] else None,
        "cohort_1rank": m["cohort_1"], "pytorch_1rank": m["torch_1"],
        "cohort_scaling": ratio(m["cohort"], None if m["cohort_1"] is None else 2 * m["cohort_1"]),
        "pytorch_scaling": ratio(m["torch"], None if m["torch_1"] is None else 2 * m["torch_1"]),
        "runs": runs, "comm_wait_runs": wait,
    }
    print_table(row)
    return row


def print_table(r):
    u = r["unit"]
    print(f"\n{r['model']}: batch {r['batch_per_rank']} per rank, 2 ranks x 1 thread, {r['steps']} steps "
          f"({r['warmup_steps']} warm-up), medians of {r['reps']}")
    print(f"  {'':26} {'global ' + u:>18} {'comm wait ms/step':>18} {'1 rank ' + u:>18} {'scaling 1->2':>13}")
    print(f"  {'cohort ddp':26} {fmt(r['cohort_ddp'], ',.0f'):>18} {fmt(r['cohort_comm_wait_ms'], '.2f'):>18} "
          f"{fmt(r['cohort_1rank'], ',.0f'):>18} {fmt(r['cohort_scaling'], '.2f'):>13}")
    print(f"  {'cohort ddp, no overlap':26} {fmt(r['cohort_ddp_no_overlap'], ',.0f'):>18} "
          f"{fmt(r['cohort_comm_wait_ms_no_overlap'], '.2f'):>18}")
    print(f"  {'PyTorch DDP (gloo)':26} {fmt(r['pytorch_ddp'], ',.0f'):>18} {'':>18} "
          f"{fmt(r['pytorch_1rank'], ',.0f'):>18} {fmt(r['pytorch_scaling'], '.2f'):>13}")
    print(f"  {'cohort / PyTorch':26} {fmt(r['ratio'], '.2f'):>18}")
    hidden = r["hidden_fraction"]
    print(f"  {'hidden by overlap':26} {'-' if hidden is None else f'{100 * hidden:.0f}%':>18}\n", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default="build", help="cohort build directory (holds launcher/ and examples/)")
    p.add_argument("--reps", type=int, default=3, help="alternating repetitions; medians are reported")
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, from mlp,cnn,gpt")
    p.add_argument("--steps", type=int, default=0,
                   help="steps per run, warm-up included (default per model: " +
                        ", ".join(f"{k} {v}" for k, v in STEPS.items()) + ")")
    p.add_argument("--warmup", type=int, default=WARMUP, help="steps not timed at the start of each run")
    p.add_argument("--json", help="also write the results (medians and every run) to this file")
    p.add_argument("--torch-only", action="store_true", help="run only the PyTorch side (no cohort build needed)")
    p.add_argument("--timeout", type=int, default=600, help="seconds one run may take")
    p.add_argument("--worker", help=argparse.SUPPRESS)  # RANK,WORLD,CORE: one PyTorch rank
    p.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return torch_worker(a)

    models = [m for m in a.models.split(",") if m]
    bad = [m for m in models if m not in MODELS]
    if bad or not models:
        p.error(f"--models: unknown {', '.join(bad) or '(none given)'}; choose from {','.join(MODELS)}")
    if a.steps and a.steps <= a.warmup:
        p.error(f"--steps ({a.steps}) must exceed --warmup ({a.warmup})")
    if len(os.sched_getaffinity(0)) < 2:
        print("# warning: fewer than 2 cores available; both ranks share one core", file=sys.stderr)
    try:
        if not a.torch_only:
            check_cohort(a.build, models)
        print(f"# PyTorch BLAS libraries loaded: {torch_blas() or 'none found'}; OMP_WAIT_POLICY=PASSIVE; "
              f"load average {os.getloadavg()[0]:.1f}{'; PyTorch only' if a.torch_only else ''}", flush=True)
        results = [bench_model(a, m) for m in models]
    except BenchError as e:
        print(f"compare_ddp.py: error: {e}", file=sys.stderr)
        return 1
    print(f"# load average at the end {os.getloadavg()[0]:.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
