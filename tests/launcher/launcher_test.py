#!/usr/bin/python3
"""cohort-run under mpirun and stand-alone, with real processes, signals and Open MPI.

    launcher_test.py CASE COHORT_RUN [MPI_PROBE]

Each CASE is one ctest test (tests/launcher/CMakeLists.txt). Every command runs with a timeout, so
a launcher that hangs fails the test instead of stalling ctest.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import rankcheck
from rankcheck import (REPORT, SKIP, TestFailure, by_rank, check, check_contract,
                       check_cpu_binding, clean_env, failure_lines, main, run)

HOST = socket.gethostname()
CPUS = sorted(os.sched_getaffinity(0))


def fake_slurm(procid=0, ntasks=1, nodelist=None, tasks_per_node=None):
    """The variables of one srun task on this host, for cases that need no real Slurm."""
    return {"SLURM_JOB_ID": "99", "SLURM_STEP_ID": "0", "SLURM_PROCID": str(procid),
            "SLURM_LOCALID": str(procid), "SLURM_NODEID": "0",
            "SLURM_STEP_NUM_TASKS": str(ntasks), "SLURM_STEP_NODELIST": nodelist or HOST,
            "SLURM_STEP_NUM_NODES": "1",
            "SLURM_STEP_TASKS_PER_NODE": tasks_per_node or str(ntasks)}


def fake_mpirun(rank, size=4):
    return {"OMPI_COMM_WORLD_RANK": str(rank), "OMPI_COMM_WORLD_SIZE": str(size),
            "OMPI_COMM_WORLD_LOCAL_RANK": str(rank), "OMPI_COMM_WORLD_LOCAL_SIZE": str(size),
            "OMPI_MCA_orte_num_nodes": "1", "OMPI_MCA_ess_base_jobid": "1234"}


def need_mpirun():
    if not shutil.which("mpirun"):
        print("SKIP: no mpirun on PATH (apt: openmpi-bin)")
        return False
    return True


def mpirun(n):
    return ["mpirun", "-np", str(n), "--oversubscribe"]


# --- cases -------------------------------------------------------------------------------------

def case_help(cohort_run, *_):
    r = run([cohort_run, "--help"], timeout=10)
    check(r.rc == 0, "--help exits 0", str(r))
    for word in ["--nproc-per-node", "--gpus-per-rank", "--gpus", "--log-dir", "--master-addr",
                 "--master-port", "--no-cpu-bind", "--mpirun", "RANK", "LOCAL_RANK",
                 "WORLD_SIZE", "LOCAL_WORLD_SIZE", "NODE_RANK", "GROUP_RANK", "MASTER_ADDR",
                 "MASTER_PORT", "COHORT_RUN_ID", "COHORT_RESTART_COUNT", "COHORT_CHECKPOINT_DIR",
                 "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "OMPI_COMM_WORLD_", "PMIX_RANK",
                 "SLURM_STEP_NODELIST", "node[01-04,07]", "srun -N 2", "--kill-on-bad-exit",
                 "mpirun -np 8", "cohort-run --nproc-per-node 2", "sbatch", "failed: exit status 1",
                 "killed by signal 9 (SIGKILL)", "docs/launching.md"]:
        check(word in r.out, f"--help does not mention {word!r}")


def case_errors(cohort_run, *_):
    """Every broken setup is a prompt exit 2 whose message says what was expected and found."""
    def expect(env_extra, args, rc, *phrases):
        r = run([cohort_run] + args, env=clean_env(env_extra), timeout=10)
        check(r.rc == rc, f"expected exit {rc}", str(r))
        for p in phrases:
            check(p in r.err, f"the error does not say {p!r}", str(r))
        check(r.seconds < 5, "errors must be prompt", str(r))

    expect({}, [], 2, "no program given")
    expect({}, ["--bogus", "true"], 2, "unknown flag --bogus")
    expect({}, ["true"], 2, "no launcher found", "srun", "mpirun", "--nproc-per-node N")
    expect({"SLURM_JOB_ID": "1", "SLURM_PROCID": "0", "SLURM_NTASKS": "2"}, ["true"], 2,
           "sbatch/salloc shell")
    bad = fake_slurm(procid=4, ntasks=4)
    expect(bad, ["true"], 2, "RANK 4 is not below WORLD_SIZE 4", "SLURM_PROCID=4")
    expect(fake_slurm(nodelist="node[01-04"), ["true"], 2, "SLURM_STEP_NODELIST 'node[01-04'",
           "cannot be parsed", "node[01-04,07]")
    expect(fake_slurm(ntasks=2, tasks_per_node="1"), ["true"], 2, "describes 1 nodes and 1 tasks")
    expect(fake_mpirun(0), ["--gpus", "2", "true"], 2, "more local ranks than GPUs",
           "needs 4 GPUs, found 2", "--gpus-per-rank 0")
    expect(dict(fake_mpirun(1), CUDA_VISIBLE_DEVICES="0,1"), ["true"], 2,
           "more local ranks than GPUs", "CUDA_VISIBLE_DEVICES=0,1")
    expect(fake_mpirun(0), ["--nproc-per-node", "2", "true"], 2, "--nproc-per-node 2",
           "started 4 ranks on this node")
    expect({"PATH": "/nonexistent"}, ["--nproc-per-node", "2", "true"], 2,
           "no mpirun was found on PATH (/nonexistent)", "apt install openmpi-bin")
    expect({}, ["--nproc-per-node", "2", "--mpirun", "/nonexistent/mpirun", "true"], 2,
           "--mpirun /nonexistent/mpirun is not an executable file")
    expect(dict(fake_slurm(), MASTER_PORT="99999"), ["true"], 2, "MASTER_PORT='99999'")
    # A program that cannot be started is a failure of that rank, like a shell's 127.
    expect(fake_slurm(), ["/nonexistent/prog"], 127,
           f"cohort-run: rank 0 (host {HOST}) failed: cannot start '/nonexistent/prog'")


def case_output(cohort_run, *_):
    """Prefixing: stdout to stdout, stderr to stderr, partial and very long lines; --log-dir."""
    prog = "printf 'a\\nb\\n'; echo e1 >&2; head -c 100000 /dev/zero | tr '\\0' x; echo; printf tail"
    r = run([cohort_run, "sh", "-c", prog], env=clean_env(fake_slurm()), timeout=20)
    check(r.rc == 0, "exit 0", str(r))
    lines = r.out.splitlines()
    check(lines[:2] == ["[0] a", "[0] b"], "stdout lines prefixed in order", str(r))
    check(r.err.splitlines() == ["[0] e1"], "stderr only on stderr, prefixed", str(r))
    check(all(l.startswith("[0] ") for l in lines), "every line prefixed", str(r))
    xs = "".join(l[4:] for l in lines if l[4:].startswith("x"))
    check(xs == "x" * 100000, "a 100000-byte line arrives whole (cut into prefixed pieces)")
    check(lines[-1] == "[0] tail", "an unterminated last line is still printed", str(r))

    logs = tempfile.mkdtemp(prefix="cohort-logs-")
    try:
        r = run([cohort_run, "--log-dir", logs + "/sub", "sh", "-c", "echo out; echo err >&2"],
                env=clean_env(fake_slurm()), timeout=20)
        check(r.rc == 0 and r.out == "" and r.err == "", "with --log-dir nothing on the terminal",
              str(r))
        check(open(f"{logs}/sub/rank_0.out").read() == "out\n", "rank_0.out holds stdout")
        check(open(f"{logs}/sub/rank_0.err").read() == "err\n", "rank_0.err holds stderr")
    finally:
        shutil.rmtree(logs)


def case_gpu_binding(cohort_run, *_):
    """One GPU set per local rank (GPU count from --gpus / CUDA_VISIBLE_DEVICES, no CUDA linked)."""
    report = "echo CVD=$CUDA_VISIBLE_DEVICES OMP=${OMP_NUM_THREADS-unset}"
    for rank in range(4):
        r = run([cohort_run, "--gpus", "4", "sh", "-c", report], env=clean_env(fake_mpirun(rank)),
                timeout=10)
        check(r.out.strip() == f"[{rank}] CVD={rank} OMP=unset", f"local rank {rank} gets GPU {rank}",
              str(r))
        r = run([cohort_run, "--gpus-per-rank", "2", "sh", "-c", report],
                env=clean_env(dict(fake_mpirun(rank), CUDA_VISIBLE_DEVICES="7,6,5,4,3,2,1,0")),
                timeout=10)
        want = ",".join(str(7 - k) for k in (2 * rank, 2 * rank + 1))
        check(r.out.strip() == f"[{rank}] CVD={want} OMP=unset",
              f"local rank {rank} gets the {rank}th pair of CUDA_VISIBLE_DEVICES", str(r))
    if not need_mpirun():
        return SKIP
    r = run(mpirun(2) + [cohort_run, "--gpus", "2", "sh", "-c", report], timeout=30)
    got = sorted(l for l in r.out.splitlines())
    check(r.rc == 0 and got == ["[0] CVD=0 OMP=unset", "[1] CVD=1 OMP=unset"],
          "under mpirun, ranks 0 and 1 get GPUs 0 and 1", str(r))


def case_mpirun_contract(cohort_run, *_):
    if not need_mpirun():
        return SKIP
    r = run(mpirun(4) + [cohort_run, "sh", "-c", REPORT],
            env=clean_env({"COHORT_CHECKPOINT_DIR": "/tmp/ckpt-x"}), timeout=60)
    check(r.rc == 0, "mpirun -np 4 cohort-run succeeds", str(r))
    envs = check_contract(r, world=4, nodes=1, master_addr="127.0.0.1", run_id_prefix="ompi-")
    for rank, e in envs.items():
        check(e.get("COHORT_CHECKPOINT_DIR") == "/tmp/ckpt-x", f"rank {rank}: checkpoint dir")
    check_cpu_binding(r, envs, 4, CPUS)
    r = run(mpirun(2) + ["--bind-to", "none", cohort_run, "sh", "-c", REPORT],
            env=clean_env({"OMP_NUM_THREADS": "3", "MASTER_PORT": "23456",
                           "COHORT_RESTART_COUNT": "0"}), timeout=60)
    envs = check_contract(r, world=2, nodes=1, master_addr="127.0.0.1", run_id_prefix="ompi-")
    for rank, e in envs.items():
        check(e.get("OMP_NUM_THREADS") == "3", "a user's OMP_NUM_THREADS is kept", str(r))
        check(e.get("MASTER_PORT") == "23456", "an exported MASTER_PORT is kept", str(r))
    # A binding asked of mpirun is kept: --bind-to socket gives both ranks the whole socket.
    r = run(mpirun(2) + ["--bind-to", "socket", cohort_run, "sh", "-c", REPORT], timeout=60)
    check(r.rc == 0, "mpirun --bind-to socket cohort-run succeeds", str(r))
    for rank, lines in by_rank(r.out).items():
        check(rankcheck.cpus_of(lines) == CPUS, f"rank {rank} keeps mpirun's socket binding", str(r))


def case_mpirun_failure(cohort_run, *_):
    """A failing rank ends mpirun's whole job within seconds, named once with host and status."""
    if not need_mpirun():
        return SKIP
    for prog, rank, status in [
            ('if [ "$RANK" = 2 ]; then sleep 0.3; exit 3; fi; exec sleep 60', 2, "exit status 3"),
            ('if [ "$RANK" = 1 ]; then sleep 0.3; kill -9 $$; fi; exec sleep 60', 1,
             "killed by signal 9 (SIGKILL)")]:
        r = run(mpirun(4) + [cohort_run, "sh", "-c", prog], timeout=60)
        check(r.rc != 0, "mpirun exits non-zero", str(r))
        check(r.seconds < 15, "the other ranks (sleeping 60 s) were stopped within seconds", str(r))
        fails = failure_lines(r.err)
        check(fails == [f"cohort-run: rank {rank} (host {HOST}) failed: {status}"],
              f"exactly one line naming rank {rank}", str(r))


def case_standalone_contract(cohort_run, *_):
    if not need_mpirun():
        return SKIP
    r = run([cohort_run, "--nproc-per-node", "2", "sh", "-c", REPORT], timeout=60)
    check(r.rc == 0, "cohort-run --nproc-per-node 2 succeeds", str(r))
    envs = check_contract(r, world=2, nodes=1, master_addr="127.0.0.1", run_id_prefix="local-")
    check_cpu_binding(r, envs, 2, CPUS)
    r = run([cohort_run, "--nproc-per-node", "3", "--master-port", "24680", "sh", "-c", REPORT],
            env=clean_env({"COHORT_RUN_ID": "my-run", "COHORT_RESTART_COUNT": "0"}), timeout=60)
    envs = check_contract(r, world=3, nodes=1, master_addr="127.0.0.1", run_id_prefix="my-run")
    check(all(e["MASTER_PORT"] == "24680" for e in envs.values()), "--master-port wins", str(r))
    check_cpu_binding(r, envs, 3, CPUS)

    # Bursts of output from 4 ranks at once arrive as whole lines, each with its own rank's
    # prefix (the ranks write to the parent's stdout directly, not through mpirun's forwarding).
    burst = 'i=0; while [ $i -lt 3000 ]; do echo "rank $RANK line $i"; i=$((i+1)); done'
    r = run([cohort_run, "--nproc-per-node", "4", "sh", "-c", burst], timeout=60)
    check(r.rc == 0, "burst run succeeds", str(r))
    lines = r.out.splitlines()
    bad = [l for l in lines if not re.fullmatch(r"\[(\d)\] rank \1 line \d+", l)]
    check(not bad, f"{len(bad)} lines mangled, e.g. {bad[:3]}")
    check(len(lines) == 4 * 3000, f"{len(lines)} lines, expected {4 * 3000}")


def case_standalone_failure(cohort_run, *_):
    """The parent prints one line, for the rank that failed first, and exits with its code."""
    if not need_mpirun():
        return SKIP
    cases = [
        ('if [ "$RANK" = 1 ]; then sleep 0.3; exit 5; fi; exec sleep 60', 1, "exit status 5", 5),
        ('if [ "$RANK" = 2 ]; then sleep 0.3; kill -9 $$; fi; exec sleep 60', 2,
         "killed by signal 9 (SIGKILL)", 137),
        # rank 2 fails first; rank 0 fails 0.3 s later unless mpirun stopped it already
        ('if [ "$RANK" = 2 ]; then exit 7; fi; if [ "$RANK" = 0 ]; then sleep 0.3; exit 4; fi; '
         'exec sleep 60', 2, "exit status 7", 7),
    ]
    for prog, rank, status, code in cases:
        r = run([cohort_run, "--nproc-per-node", "3", "sh", "-c", prog], timeout=60)
        check(r.rc == code, f"exit code {code}", str(r))
        check(r.seconds < 15, "the job ended within seconds", str(r))
        fails = failure_lines(r.err)
        check(fails == [f"cohort-run: rank {rank} (host {HOST}) failed: {status}"],
              f"exactly one summary line naming rank {rank}", str(r))
        check("Primary job" not in r.err, "no mpirun abort banner", str(r))


def case_signals(cohort_run, *_):
    """SIGTERM/SIGINT reach the program through cohort-run; a stopped rank is not 'failed'."""
    prog = ('trap "echo got-$RANK-TERM; exit 9" TERM; trap "echo got-$RANK-INT; exit 0" INT; '
            'echo ready; sleep 60 & wait')

    def start(args, env):
        p = subprocess.Popen([cohort_run] + args + ["sh", "-c", prog], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return p

    def ready(p, n):
        seen = 0
        deadline = time.time() + 20
        while seen < n and time.time() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            seen += line.strip().endswith("ready")
        check(seen == n, f"{n} ranks did not report ready")

    # rank mode (one srun task): SIGINT is forwarded, the program exits 0, so does cohort-run
    p = start([], clean_env(fake_slurm()))
    ready(p, 1)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=10)
    check(p.returncode == 0 and "[0] got-0-INT" in out, f"SIGINT forwarded: rc={p.returncode}\n{out}\n{err}")
    check(not failure_lines(err), f"a stopped rank is not reported as failed: {err}")

    if not need_mpirun():
        return SKIP
    p = start(["--nproc-per-node", "2"], clean_env())
    ready(p, 2)
    t = time.time()
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=20)
    check(time.time() - t < 10, "stopped within seconds")
    check("[0] got-0-TERM" in out and "[1] got-1-TERM" in out,
          f"SIGTERM reached both ranks' programs: {out}\n{err}")
    check(p.returncode == 128 + signal.SIGTERM and "cohort-run: stopped by SIGTERM" in err,
          f"rc={p.returncode}\n{err}")
    check(not failure_lines(err), f"no rank is reported as failed: {err}")


def case_mpi_allreduce(cohort_run, probe=None, *_):
    """The MPI probe (MPI_Allreduce, MPI's own view vs the contract, a TCP rendezvous at
    MASTER_ADDR:MASTER_PORT) under mpirun and stand-alone."""
    if not need_mpirun():
        return SKIP
    for cmd, n in [(mpirun(4) + [cohort_run, probe], 4),
                   ([cohort_run, "--nproc-per-node", "2", probe], 2)]:
        r = run(cmd, timeout=90)
        check(r.rc == 0, "the probe passes", str(r))
        ok = [l for l in r.out.splitlines() if "probe ok" in l]
        check(len(ok) == n, f"{n} ranks report ok", str(r))
        check(f"probe summary: {n} ranks on 1 hosts, all_reduce={n * (n - 1) // 2}" in r.out,
              "rank 0's summary", str(r))


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(main(CASES))
