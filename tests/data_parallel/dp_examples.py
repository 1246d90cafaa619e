#!/usr/bin/python3
"""The example models trained data-parallel equal the same training on one rank.

    dp_examples.py CASE BUILD_DIR COHORT_RUN

N ranks x batch B, K steps, must leave the same parameters as 1 rank x batch N*B (same data, same
seed): the DistributedSampler gives rank r positions r, r+N, ... of the epoch order, so each step
the N ranks together see exactly the 1-rank batch, and Ddp averages their gradients. Only the
order of float additions differs, hence the tolerance below (float32, a few steps; a wrong
average, a missed bucket or a stale gradient is off by far more: typically 1e-2 and up).

Cases: mpirun (N = 2, 3 for mlp, cnn, gpt; N = 4 oversubscribed for mlp), mirrored (N replicas
in one process equal Ddp on N ranks and the 1-rank run).
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

CASE, BUILD, COHORT_RUN = (sys.argv[1:4] + [""] * 3)[:3]
STEPS = 4
BATCH = {"mlp": 32, "cnn": 16, "gpt": 8}
# Max |a - b| over all parameters relative to max |a| of that tensor, and the L2 norm of the
# difference relative to the L2 norm of all parameters. gpt trains with Adam, which divides each
# gradient by its own running magnitude: where the exact gradient is zero (the key bias of
# attention: softmax ignores a constant shift) it turns rounding noise into steps of up to lr, so
# gpt's per-element bound is looser; its norm bound is the same.
MAX_REL = {"mlp": 2e-4, "cnn": 2e-4, "gpt": 2e-3}
NORM_REL = 2e-5
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
DTYPES = {0: np.float32, 1: np.float64, 4: np.int32, 5: np.int64}


def load_state(path):
    """Reads a cohort::save file (docs/checkpoint format: COHORTSD, version, tensors)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"COHORTSD", f"{path}: not a cohort state file"
    version, count = struct.unpack_from("<IQ", data, 8)
    pos, out = 20, {}
    for _ in range(count):
        (nlen,) = struct.unpack_from("<I", data, pos)
        pos += 4
        name = data[pos:pos + nlen].decode()
        pos += nlen
        dtype, ndim = struct.unpack_from("<BI", data, pos)
        pos += 5
        sizes = struct.unpack_from(f"<{ndim}q", data, pos)
        pos += 8 * ndim
        nbytes, _checksum = struct.unpack_from("<QQ", data, pos)
        pos += 16
        out[name] = np.frombuffer(data[pos:pos + nbytes], dtype=DTYPES.get(dtype, np.float32)).reshape(sizes)
        pos += nbytes
    return out


def train(cmd, save):
    r = subprocess.run(cmd + ["--steps", str(STEPS), "--log-every", "1000", "--save", save],
                       env=ENV, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        print(" ".join(cmd), "\n", r.stdout, r.stderr)
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited {r.returncode}")
    return r.stdout


def compare(label, a_path, b_path, model):
    a, b = load_state(a_path), load_state(b_path)
    if a.keys() != b.keys():
        raise SystemExit(f"FAIL {label}: parameter names differ: {sorted(a.keys() ^ b.keys())}")
    worst, worst_name, diff2, norm2 = 0.0, "", 0.0, 0.0
    for name in a:
        x, y = a[name].astype(np.float64), b[name].astype(np.float64)
        scale = max(np.abs(x).max(initial=0.0), 1e-12)
        rel = np.abs(x - y).max(initial=0.0) / scale
        if rel > worst:
            worst, worst_name = rel, name
        diff2 += float(((x - y) ** 2).sum())
        norm2 += float((x ** 2).sum())
    norm_rel = (diff2 / max(norm2, 1e-30)) ** 0.5
    ok = worst <= MAX_REL[model] and norm_rel <= NORM_REL
    print(f"{'ok  ' if ok else 'FAIL'} {label}: max rel diff {worst:.2e} ({worst_name}), "
          f"norm rel diff {norm_rel:.2e} (tolerance {MAX_REL[model]:g} / {NORM_REL:g})")
    return ok


def example(model):
    return os.path.join(BUILD, "examples", model)


def case_mpirun(tmp):
    ok = True
    plan = [(m, n) for m in ("mlp", "cnn", "gpt") for n in (2, 3)] + [("mlp", 4)]
    for model, n in plan:
        b = BATCH[model]
        single = os.path.join(tmp, f"{model}-1x{n * b}.sd")
        if not os.path.exists(single):
            train([example(model), "--batch-size", str(n * b)], single)
        multi = os.path.join(tmp, f"{model}-{n}x{b}.sd")
        train(["mpirun", "-np", str(n), "--oversubscribe", "--bind-to", "none", COHORT_RUN, example(model),
               "--strategy", "ddp", "--batch-size", str(b)], multi)
        ok &= compare(f"{model}: mpirun -np {n} ddp x batch {b} vs 1 rank x batch {n * b}", multi, single, model)
    return ok


def case_mirrored(tmp):
    ok = True
    for model in ("mlp", "cnn", "gpt"):
        for n in (2, 3):
            b = BATCH[model]
            mirrored = os.path.join(tmp, f"{model}-mirrored{n}.sd")
            train([example(model), "--strategy", "mirrored", "--replicas", str(n), "--batch-size", str(b)], mirrored)
            ddp = os.path.join(tmp, f"{model}-ddp{n}.sd")
            train(["mpirun", "-np", str(n), "--oversubscribe", "--bind-to", "none", COHORT_RUN, example(model),
                   "--strategy", "ddp", "--batch-size", str(b)], ddp)
            ok &= compare(f"{model}: mirrored {n} replicas vs ddp {n} ranks (batch {b} each)", mirrored, ddp, model)
    # Mirrored across processes: 2 processes x 2 replicas x B = 1 rank x 4B.
    b = BATCH["mlp"]
    single = os.path.join(tmp, "mlp-1x4b.sd")
    train([example("mlp"), "--batch-size", str(4 * b)], single)
    both = os.path.join(tmp, "mlp-2x2.sd")
    train(["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "none", COHORT_RUN, example("mlp"),
           "--strategy", "mirrored", "--replicas", "2", "--batch-size", str(b)], both)
    ok &= compare(f"mlp: 2 processes x mirrored 2 replicas x batch {b} vs 1 rank x batch {4 * b}", both, single, "mlp")
    return ok


if __name__ == "__main__":
    cases = {"mpirun": case_mpirun, "mirrored": case_mirrored}
    if CASE not in cases:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory(prefix="cohort-dp-") as tmp:
        sys.exit(0 if cases[CASE](tmp) else 1)
