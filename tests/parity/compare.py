#!/usr/bin/python3
"""Parity of cohort's ops with PyTorch, forward and backward.

  /usr/bin/python3 tests/parity/compare.py --driver build/tests/parity/cohort_parity_driver [--seed N]
      [--filter SUBSTRING] [--threads T] [--keep DIR] [--verbose]

Runs cohort_parity_driver (which writes every case's inputs, outputs, upstream gradients and input
gradients, see driver_main.cpp), then redoes each case with torch: the same op (or optimizer steps,
LR schedule, module) on the same inputs, then torch.autograd.backward with the same upstream
gradients. Prints one line per case (name, the largest absolute error over its outputs and
gradients, the tolerance, PASS/FAIL) and exits 1 if any case fails, 77 (ctest's skip) if this
interpreter cannot import torch.

The seed is fresh on every run (from os.urandom) and printed first: rerun with --seed to reproduce.
16-bit cases run in torch's own bf16/f16 kernels where the CPU has them, else in f32 with the
result rounded to the 16-bit type (what cohort does: load into float, compute, round once).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--driver", required=True, help="path to cohort_parity_driver")
    p.add_argument("--seed", type=int, help="seed for the random inputs (default: fresh from os.urandom)")
    p.add_argument("--filter", default="", help="run only the cases whose name contains this")
    p.add_argument("--threads", type=int, default=2, help="threads for cohort and for torch")
    p.add_argument("--keep", help="write the driver's files here and keep them (default: a temp dir)")
    p.add_argument("--verbose", action="store_true", help="print each compared tensor")
    return p.parse_args()


class Case:
    """One case of the manifest, loaded, with the torch reference computed next to it."""

    def __init__(self, entry, directory, torch, ops):
        self.entry, self.dir, self.torch, self.ops = entry, directory, torch, ops
        self.name = entry["name"]
        self.family = ops.OPS[entry["op"]][0] if entry["op"] in ops.OPS else None

    def load(self, spec):
        torch = self.torch
        if spec is None:
            return None
        dtype = self.ops.DTYPES[spec["dtype"]]
        with open(os.path.join(self.dir, spec["file"]), "rb") as f:
            data = bytearray(f.read())
        numel = math.prod(spec["shape"])
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(data) != numel * itemsize:
            raise ValueError(f"{spec['file']}: {len(data)} bytes, expected {numel * itemsize}")
        if numel == 0:
            return torch.empty(spec["shape"], dtype=dtype)
        return torch.frombuffer(data, dtype=dtype).reshape(spec["shape"]).clone()


def outputs_by_name(outs, specs):
    """A torch function's outputs keyed by name, in the order of cohort's named outputs."""
    names = [s.get("name") for s in specs]
    only_cohort = [n for n in names if n not in outs]
    only_torch = sorted(set(outs) - set(names))
    if only_cohort or only_torch:
        raise AssertionError(f"outputs differ by name: only cohort has {only_cohort}, only torch has {only_torch}")
    return [outs[n] for n in names]


def run_torch(case, upcast):
    """Forward and backward in torch; returns (outputs, input grads). upcast: bf16/f16 in f32."""
    torch = case.torch
    half = (torch.bfloat16, torch.float16)
    leaves = {}
    for spec in case.entry["inputs"]:
        x = case.load(spec)
        if upcast and x.dtype in half:
            x = x.float()
        if spec["requires_grad"]:
            x.requires_grad_()
        leaves[spec["name"]] = x
    cohort_outs = [case.load(s) for s in case.entry["outputs"]]
    fn = case.ops.OPS[case.entry["op"]][1]
    outs = fn(leaves, case.entry["attrs"], cohort_outs)
    if isinstance(outs, dict):
        outs = outputs_by_name(outs, case.entry["outputs"])
    outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]

    roots, grads = [], []
    for k, spec in enumerate(case.entry["upstream"]):
        if k >= len(outs):
            continue
        if spec is None:
            if outs[k].requires_grad:
                raise AssertionError(f"torch's output {k} is differentiable but cohort's recorded no gradient")
            continue
        g = case.load(spec)
        if upcast and g.dtype in half:
            g = g.float()
        if not outs[k].requires_grad:
            raise AssertionError(f"cohort's output {k} is differentiable but torch's is not")
        roots.append(outs[k])
        grads.append(g)
    if roots:
        torch.autograd.backward(roots, grads)
    input_grads = [leaves[s["name"]].grad if s["requires_grad"] else None for s in case.entry["inputs"]]
    return [o.detach() for o in outs], input_grads


def compare_tensor(torch, label, got, ref, tol, scaled, verbose):
    """Returns (max abs error, passed, message). scaled: atol is relative to max |ref| (at least 1)."""
    if tuple(got.shape) != tuple(ref.shape):
        return math.inf, False, f"{label}: shape {tuple(got.shape)}, torch {tuple(ref.shape)}"
    if got.dtype != ref.dtype:
        return math.inf, False, f"{label}: dtype {got.dtype}, torch {ref.dtype}"
    if got.numel() == 0:
        return 0.0, True, ""
    if not (got.is_floating_point()):
        wrong = got != ref
        n = int(wrong.sum())
        if n:
            i = int(wrong.flatten().nonzero()[0])
            return math.inf, False, (f"{label}: {n} of {got.numel()} values differ, first at flat index {i}: "
                                     f"{got.flatten()[i].item()} vs torch {ref.flatten()[i].item()}")
        return 0.0, True, ""
    g, r = got.double(), ref.double()
    same = (g == r) | (torch.isnan(g) & torch.isnan(r))  # equal infinities and NaN in both count as equal
    err = torch.where(same, torch.zeros_like(g), (g - r).abs())
    err = torch.where(torch.isnan(err), torch.full_like(err, math.inf), err)
    atol, rtol = tol
    finite = r[torch.isfinite(r)].abs()
    if scaled and finite.numel():
        atol *= max(1.0, float(finite.max()))
    bound = atol + rtol * r.abs()
    bad = err > bound
    max_err = float(err.max())
    if verbose:
        used = float((err / bound.clamp_min(1e-300)).max()) if atol or rtol else (0.0 if max_err == 0 else math.inf)
        print(f"    {label}: {tuple(got.shape)} {got.dtype} max abs err {max_err:.3g}, {used:.3g} of the tolerance")
    if bool(bad.any()):
        ratio = torch.where(bad, err / bound.clamp_min(1e-300), torch.zeros_like(err))
        i = int(ratio.flatten().argmax())
        return max_err, False, (f"{label}: {int(bad.sum())} of {got.numel()} elements out of tolerance; worst at flat "
                                f"index {i}: {g.flatten()[i].item():.9g} vs torch {r.flatten()[i].item():.9g}")
    return max_err, True, ""


def dtype_key(torch, dtype):
    return {torch.float32: "f32", torch.float64: "f64", torch.bfloat16: "bf16", torch.float16: "f16"}.get(dtype, "f32")


def check_case(case, verbose):
    """Returns (max abs error, tolerance text, list of failure messages)."""
    torch, entry = case.torch, case.entry
    if entry["error"] is not None:
        return math.inf, "-", [f"cohort threw: {entry['error']}"]
    if case.family is None:
        return math.inf, "-", [f"compare.py has no torch op for '{entry['op']}'"]
    half = (torch.bfloat16, torch.float16)
    has_half = any(s["dtype"] in ("bf16", "f16") for s in entry["inputs"])
    try:
        outs, grads = run_torch(case, upcast=False)
    except RuntimeError as e:  # a 16-bit kernel torch's CPU build lacks
        if not has_half or "not implemented" not in str(e):
            raise
        outs, grads = run_torch(case, upcast=True)
        expected = None
        for s in entry["inputs"]:
            if s["dtype"] in ("bf16", "f16", "f32", "f64"):
                d = case.ops.DTYPES[s["dtype"]]
                expected = d if expected is None else torch.promote_types(expected, d)
        outs = [o.to(expected) if o.is_floating_point() else o for o in outs]
        grads = [None if g is None else g.to(case.ops.DTYPES[s["dtype"]]) for g, s in zip(grads, entry["inputs"])]

    got_outs = [case.load(s) for s in entry["outputs"]]
    failures, worst, tols = [], 0.0, set()
    if len(got_outs) != len(outs):
        return math.inf, "-", [f"cohort returned {len(got_outs)} outputs, torch {len(outs)}"]
    families = case.ops.TOLERANCES
    biggest_out = max([o.numel() for o in outs] + [1])
    compared = []
    for k, (got, ref) in enumerate(zip(got_outs, outs)):
        label = entry["outputs"][k].get("name") or k
        compared.append((f"output {label}", got, ref, case.family))
    for i, spec in enumerate(entry["inputs"]):
        if not spec["requires_grad"]:
            continue
        got = case.load(entry["grads"][i])
        ref = grads[i]
        shape, dtype = spec["shape"], case.ops.DTYPES[spec["dtype"]]
        got = torch.zeros(shape, dtype=dtype) if got is None else got
        ref = torch.zeros(shape, dtype=dtype) if ref is None else ref
        # A broadcast input's gradient is a sum over the broadcast dims.
        family = case.family
        if family in ("exact", "elementwise") and math.prod(shape) < biggest_out:
            family = "reduction"
        compared.append((f"grad of {spec['name']}", got, ref, family))
    for label, got, ref, family in compared:
        tol = families[family][dtype_key(torch, got.dtype)] if got.is_floating_point() else (0.0, 0.0)
        scaled = family in case.ops.SCALED_ATOL
        err, ok, message = compare_tensor(torch, label, got, ref, tol, scaled, verbose)
        if got.is_floating_point():
            tols.add(f"{tol[0]:g}{'*max' if scaled else ''}/{tol[1]:g}")
        worst = max(worst, err)
        if not ok:
            failures.append(message)
    return worst, ",".join(sorted(tols)) or "exact", failures


def main():
    args = parse_args()
    try:
        import torch
    except ImportError as e:
        print(f"parity: SKIPPED: {sys.executable} cannot import torch ({e}); install python3-torch to run it")
        return SKIP
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    import torch_ops

    torch.set_num_threads(args.threads)
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    print(f"parity: seed {seed}, {args.threads} threads, torch {torch.__version__} "
          f"(reproduce: {sys.executable} {os.path.abspath(__file__)} --driver {os.path.abspath(args.driver)} --seed {seed})")

    out_dir = args.keep or tempfile.mkdtemp(prefix="cohort-parity-")
    os.makedirs(out_dir, exist_ok=True)
    command = [args.driver, out_dir, "--seed", str(seed), "--threads", str(args.threads)]
    if args.filter:
        command += ["--filter", args.filter]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        print(f"parity: FAILED: {' '.join(command)} exited with {run.returncode}:\n{run.stdout}{run.stderr}")
        return 1
    with open(os.path.join(out_dir, "manifest.json")) as f:
        manifest = json.load(f)

    failed = []
    for entry in manifest["cases"]:
        case = Case(entry, out_dir, torch, torch_ops)
        try:
            err, tol, failures = check_case(case, args.verbose)
        except Exception as e:  # a case torch rejects, or a file that does not load: a failure
            err, tol, failures = math.inf, "-", [f"{type(e).__name__}: {e}"]
        status = "FAIL" if failures else "PASS"
        print(f"{case.name:<40} {entry['op']:<14} max_abs_err {err:<10.3g} atol/rtol {tol:<22} {status}")
        for message in failures:
            print(f"    {message}")
        if failures:
            failed.append(case.name)

    total = len(manifest["cases"])
    if total == 0:
        print(f"parity: FAILED: no case matched --filter '{args.filter}'")
        return 1
    if failed:
        print(f"parity: {len(failed)} of {total} cases FAILED (seed {seed}; files kept in {out_dir}): {' '.join(failed)}")
        return 1
    if not args.keep:
        shutil.rmtree(out_dir, ignore_errors=True)
    print(f"parity: all {total} cases passed (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
