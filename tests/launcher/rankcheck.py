"""Helpers shared by the launcher and Slurm tests: run a command with a clean environment, split
cohort-run's rank-prefixed output by rank, and check the rank contract every rank received."""
import os
import re
import subprocess
import sys
import time

SKIP = 77  # ctest SKIP_RETURN_CODE

# What a rank program prints so the tests can see its contract and its CPU binding: a few hundred
# bytes, so that mpirun (which forwards output in chunks, not lines) never has to cut it.
CONTRACT_VARS = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK",
                 "GROUP_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "COHORT_RUN_ID",
                 "COHORT_RESTART_COUNT", "COHORT_CHECKPOINT_DIR", "OMP_NUM_THREADS",
                 "CUDA_VISIBLE_DEVICES"]
REPORT = ("env | grep -E '^(" + "|".join(CONTRACT_VARS) + ")='; "
          "grep Cpus_allowed_list /proc/self/status; echo to-stderr >&2")

_PREFIX = re.compile(r"^\[(\d+)\] (.*)$")


class TestFailure(Exception):
    pass


def check(cond, what, context=""):
    if not cond:
        raise TestFailure(what + (("\n--- context:\n" + context) if context else ""))


def clean_env(extra=None):
    """This process's environment without anything a surrounding launcher left in it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "OMPI_", "PMIX_", "COHORT_"))
           and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK",
                         "GROUP_RANK", "GROUP_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
                         "OMP_NUM_THREADS", "CUDA_VISIBLE_DEVICES")}
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env.update(extra or {})
    return env


class Result:
    def __init__(self, rc, out, err, seconds):
        self.rc, self.out, self.err, self.seconds = rc, out, err, seconds

    def __str__(self):
        return (f"rc={self.rc} after {self.seconds:.1f} s\n--- stdout:\n{self.out[-4000:]}"
                f"\n--- stderr:\n{self.err[-4000:]}")


def run(cmd, env=None, timeout=60, cwd=None):
    """Runs cmd; a hang is a test failure (with what was printed so far), never a stuck test."""
    start = time.time()
    try:
        p = subprocess.run(cmd, env=env if env is not None else clean_env(), timeout=timeout,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)
    except subprocess.TimeoutExpired as e:
        raise TestFailure(f"{' '.join(cmd)} did not finish within {timeout} s\n"
                          f"--- stdout:\n{e.stdout}\n--- stderr:\n{e.stderr}")
    r = Result(p.returncode, p.stdout, p.stderr, time.time() - start)
    print(f"$ {' '.join(cmd)}\n{r}\n", flush=True)
    return r


def by_rank(text):
    """{rank: [line, ...]} from cohort-run's prefixed output; unprefixed lines under None."""
    ranks = {}
    for line in text.splitlines():
        m = _PREFIX.match(line)
        key = int(m.group(1)) if m else None
        ranks.setdefault(key, []).append(m.group(2) if m else line)
    return ranks


def env_of(lines):
    out = {}
    for line in lines:
        if "=" in line and not line.startswith(" "):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def cpus_of(lines):
    for line in lines:
        if line.startswith("Cpus_allowed_list:"):
            return expand_cpu_list(line.split(":", 1)[1].strip())
    raise TestFailure(f"no Cpus_allowed_list line among {lines}")


def expand_cpu_list(text):
    cpus = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        cpus += list(range(int(lo), int(hi or lo) + 1))
    return cpus


def failure_lines(text):
    return [l for l in text.splitlines() if l.startswith("cohort-run: rank ") and " failed: " in l]


def check_contract(result, world, nodes, master_addr, run_id_prefix, local_of=None,
                   node_of=None):
    """Every rank 0..world-1 printed its environment (REPORT) with a consistent contract.

    local_of(rank) / node_of(rank) give the expected LOCAL_RANK / NODE_RANK (default: one node).
    Returns {rank: env}."""
    out = by_rank(result.out)
    check(set(k for k in out if k is not None) == set(range(world)),
          f"expected prefixed output from ranks 0..{world - 1}, got {sorted(k for k in out if k is not None)}",
          str(result))
    check(None not in out, f"unprefixed stdout lines: {out.get(None)}", str(result))
    err = by_rank(result.err)
    for r in range(world):
        check("to-stderr" in err.get(r, []), f"rank {r}'s stderr line is not on stderr as [{r}] ...",
              str(result))
    envs = {r: env_of(lines) for r, lines in out.items()}
    local_of = local_of or (lambda r: r)
    node_of = node_of or (lambda r: 0)
    local_sizes = {}
    for r in range(world):
        local_sizes[node_of(r)] = local_sizes.get(node_of(r), 0) + 1
    ports, run_ids = set(), set()
    for r, e in envs.items():
        want = {"RANK": str(r), "WORLD_SIZE": str(world), "LOCAL_RANK": str(local_of(r)),
                "LOCAL_WORLD_SIZE": str(local_sizes[node_of(r)]), "NODE_RANK": str(node_of(r)),
                "GROUP_RANK": str(node_of(r)), "GROUP_WORLD_SIZE": str(nodes),
                "MASTER_ADDR": master_addr, "COHORT_RESTART_COUNT": "0"}
        for k, v in want.items():
            check(e.get(k) == v, f"rank {r}: {k}={e.get(k)!r}, expected {v!r}", str(result))
        port = int(e.get("MASTER_PORT", "0"))
        check(1024 <= port <= 65535, f"rank {r}: MASTER_PORT {port}")
        ports.add(port)
        run_ids.add(e.get("COHORT_RUN_ID", ""))
    check(len(ports) == 1, f"MASTER_PORT differs between ranks: {ports}")
    check(len(run_ids) == 1 and next(iter(run_ids)).startswith(run_id_prefix),
          f"COHORT_RUN_ID {run_ids}, expected one value starting with {run_id_prefix!r}")
    return envs


def check_cpu_binding(result, envs, local_world, cpus):
    """Disjoint core blocks covering `cpus` when there are enough, else round-robin plus one note;
    OMP_NUM_THREADS = the cores given."""
    out = by_rank(result.out)
    given = {r: cpus_of(lines) for r, lines in out.items() if r is not None}
    notes = [l for l in result.err.splitlines() if "ranks share the" in l]
    if local_world <= len(cpus):
        seen = []
        for r, c in given.items():
            seen += c
        check(sorted(seen) == sorted(cpus), f"cores {given} are not a disjoint split of {cpus}")
        check(not notes, f"unexpected sharing note {notes}")
    else:
        for r, c in given.items():
            check(len(c) == 1, f"rank {r} got cores {c}, expected one shared core")
        check(len(notes) == 1, f"expected one sharing note, got {notes}", str(result))
    for r, c in given.items():
        check(envs[r].get("OMP_NUM_THREADS") == str(len(c)),
              f"rank {r}: OMP_NUM_THREADS={envs[r].get('OMP_NUM_THREADS')} with cores {c}")


def main(cases):
    """Runs the case named by argv[1] with argv[2:]; prints PASS/FAIL; exits 0/1/77."""
    name, args = sys.argv[1], sys.argv[2:]
    try:
        rc = cases[name](*args)
    except TestFailure as e:
        print(f"FAIL {name}: {e}", flush=True)
        return 1
    if rc == SKIP:
        return SKIP
    print(f"PASS {name}", flush=True)
    return 0
