#!/usr/bin/python3
"""cohort-run under a real Slurm started on this machine (slurm/local_cluster.py).

    slurm_test.py CASE SOURCE_DIR KEY COHORT_RUN MPI_PROBE

start_single/stop_single and start_two/stop_two are ctest fixtures (setup/cleanup: the cleanup
runs even when a test failed, and start first removes whatever an aborted run left behind). The
other cases use the running cluster. Exit 77 (skip) only when a cluster is impossible here, with
the reason printed.
"""
import os
import re
import shlex
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "launcher"))
from rankcheck import (REPORT, SKIP, Result, TestFailure, by_rank, check,  # noqa: E402
                       check_contract, check_cpu_binding, failure_lines, main, run)

SOURCE_DIR, KEY, COHORT_RUN, PROBE = (sys.argv[2:6] + [""] * 4)[:4]
sys.path.insert(0, os.path.join(SOURCE_DIR, "slurm"))
import local_cluster  # noqa: E402


def cluster(nodes):
    c = local_cluster.Cluster(KEY, nodes)
    why = local_cluster.prerequisites(nodes)
    if why:
        print(f"SKIP: a {nodes}-node Slurm cluster cannot run here: {why}")
        return None
    check(os.path.exists(c.conf), f"the {nodes}-node cluster is not running ({c.conf} missing): "
          "its start fixture failed; see that test's output")
    return c


def srun(c, args, timeout=60):
    c.wait_idle()  # srun's time then starts when its step does, not behind a completing job
    return run(["srun"] + args, env=c.env(), timeout=timeout, cwd=c.dir)


def sbatch(c, args, extra_env=None, timeout=120):
    """Submits a batch job and waits for it to end, polling every 0.1 s (`sbatch --wait` polls
    every few seconds and would double these tests' time). rc is the job's exit code."""
    c.wait_idle()
    start = time.time()
    sub = run(["sbatch", "--parsable"] + args, env=c.env(extra_env), timeout=30, cwd=c.dir)
    check(sub.rc == 0, "sbatch accepts the job", str(sub))
    job = sub.out.strip().split(";")[0]
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = run(["scontrol", "-o", "show", "job", job], env=c.env(), timeout=10).out
        state = re.search(r"JobState=(\S+)", info)
        if state and state.group(1) not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
            code = re.search(r" ExitCode=(\d+):(\d+)", info)
            rc = int(code.group(1)) if code else -1
            print(f"job {job}: {state.group(1)}, exit code {rc}, after {time.time() - start:.1f} s")
            return rc, state.group(1)
        time.sleep(0.1)
    raise TestFailure(f"job {job} did not end within {timeout} s")


# --- fixtures ----------------------------------------------------------------------------------

def fixture(action, nodes):
    why = local_cluster.prerequisites(nodes)
    if why:
        print(f"SKIP: a {nodes}-node Slurm cluster cannot run here: {why}")
        return SKIP
    c = local_cluster.Cluster(KEY, nodes)
    if action == "stop":
        local_cluster.stop(c)
        check(not os.path.exists(c.dir), f"{c.dir} still exists after stop")
        leftover = run(["ip", "netns", "list"], timeout=10).out
        check(f"coh{c.tag}" not in leftover, f"namespaces left behind: {leftover}")
        return 0
    try:
        c.start()
    except Exception as e:  # what the daemons logged says why
        logs = ""
        for name in sorted(os.listdir(c.dir)) + [f"log/{n}" for n in os.listdir(c.dir + "/log")]:
            path = os.path.join(c.dir, name)
            if os.path.isfile(path) and (name.endswith(".log") or name.endswith(".out")):
                logs += f"--- {name}\n" + open(path, errors="replace").read()[-2000:]
        local_cluster.stop(c)
        raise TestFailure(f"cluster start failed: {e}\n{logs}")
    r = run(["sinfo", "-N", "-h", "-o", "%N %t %c"], env=c.env(), timeout=10)
    print(f"cluster with {nodes} node(s) up in {c.dir}")
    return 0


def case_start_single(*_):
    return fixture("start", 1)


def case_stop_single(*_):
    return fixture("stop", 1)


def case_start_two(*_):
    return fixture("start", 2)


def case_stop_two(*_):
    return fixture("stop", 2)


# --- single node -------------------------------------------------------------------------------

def case_srun_contract(*_):
    """srun -n 4 cohort-run: ranks 0-3 get the contract, cores, prefixes; MPI works through PMIx."""
    c = cluster(1)
    if not c:
        return SKIP
    host = c.names[0]
    r = srun(c, ["-n", "4", COHORT_RUN, "sh", "-c", REPORT])
    check(r.rc == 0, "srun -n 4 cohort-run succeeds", str(r))
    envs = check_contract(r, world=4, nodes=1, master_addr=host, run_id_prefix="slurm-")
    check_cpu_binding(r, envs, 4, sorted(os.sched_getaffinity(0)))
    check(all(re.fullmatch(r"slurm-\d+\.0", e["COHORT_RUN_ID"]) for e in envs.values()),
          "COHORT_RUN_ID is slurm-<job>.<step>")
    r = srun(c, ["-n", "3", COHORT_RUN, PROBE])
    check(r.rc == 0 and "probe summary: 3 ranks on 1 hosts, all_reduce=3" in r.out,
          "the MPI probe passes under srun --mpi=pmix", str(r))


def case_ddp_matches_single(*_):
    """srun -n N cohort-run <example> --strategy ddp x batch B trains to the same parameters as one
    rank with batch N*B, for the three examples and N = 2, 3 (tests/data_parallel/dp_examples.py
    does the same under mpirun)."""
    c = cluster(1)
    if not c:
        return SKIP
    sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "data_parallel"))
    import dp_examples  # noqa: E402
    common = ["--steps", str(dp_examples.STEPS), "--log-every", "1000", "--threads", "1"]
    ok = True
    for model in ("mlp", "cnn", "gpt"):
        exe, b = os.path.join(KEY, "examples", model), dp_examples.BATCH[model]
        for n in (2, 3):
            multi = os.path.join(c.dir, f"ddp-{model}-{n}x{b}.sd")
            single = os.path.join(c.dir, f"ddp-{model}-1x{n * b}.sd")
            r = srun(c, ["-n", str(n), COHORT_RUN, exe, "--strategy", "ddp", "--batch-size", str(b),
                         "--save", multi] + common, timeout=180)
            check(r.rc == 0 and f'"strategy": "ddp", "world_size": {n}' in r.out,
                  f"srun -n {n} cohort-run {model} --strategy ddp runs", str(r))
            r = run([exe, "--batch-size", str(n * b), "--save", single] + common, timeout=180)
            check(r.rc == 0, f"{model} on one rank runs", str(r))
            ok &= dp_examples.compare(f"{model}: srun -n {n} ddp x batch {b} vs 1 rank x batch {n * b}",
                                      multi, single, model)
    check(ok, "every model's parameters match within the tolerance")


def case_sbatch_template(*_):
    """sbatch slurm/single-node.sbatch runs to completion, with every rank's contract in its log."""
    c = cluster(1)
    if not c:
        return SKIP
    out = os.path.join(c.dir, "sbatch-single.out")
    rc, state = sbatch(c, ["-o", out, "--ntasks-per-node", "4", "--time", "5",
                           os.path.join(SOURCE_DIR, "slurm", "single-node.sbatch"), "sh", "-c",
                           REPORT], {"COHORT_RUN": COHORT_RUN})
    text = open(out).read() if os.path.exists(out) else "(no output file)"
    print(f"--- {out}:\n{text}")
    check(rc == 0 and state == "COMPLETED", "the batch job completes with exit 0", text)
    ranks = by_rank(text)
    for rank in range(4):
        lines = ranks.get(rank, [])
        check(f"RANK={rank}" in lines and "WORLD_SIZE=4" in lines and
              f"LOCAL_RANK={rank}" in lines and f"MASTER_ADDR={c.names[0]}" in lines,
              f"rank {rank}'s contract in the job's output", text)


def case_kill_on_bad_exit(*_):
    """A rank that fails ends the step within seconds under srun -K1, named by cohort-run; without
    -K1 Slurm lets the other tasks run to their end (documented)."""
    c = cluster(1)
    if not c:
        return SKIP
    host = c.names[0]
    for prog, rank, status in [
            ('if [ "$RANK" = 2 ]; then sleep 0.5; exit 3; fi; exec sleep 60', 2, "exit status 3"),
            ('if [ "$RANK" = 1 ]; then sleep 0.5; kill -9 $$; fi; exec sleep 60', 1,
             "killed by signal 9 (SIGKILL)")]:
        r = srun(c, ["-K1", "-n", "4", COHORT_RUN, "sh", "-c", prog], timeout=60)
        check(r.rc != 0, "srun exits non-zero", str(r))
        check(r.seconds < 10, "-K1 ended the sleeping ranks within seconds", str(r))
        check(failure_lines(r.err) == [f"cohort-run: rank {rank} (host {host}) failed: {status}"],
              f"exactly one line naming rank {rank}", str(r))
    r = srun(c, ["-n", "4", COHORT_RUN, "sh", "-c",
                 'if [ "$RANK" = 2 ]; then exit 3; fi; exec sleep 4'], timeout=60)
    check(r.rc != 0 and r.seconds >= 4, "without -K1 the other ranks run on", str(r))
    check(failure_lines(r.err) == [f"cohort-run: rank 2 (host {host}) failed: exit status 3"],
          "still exactly one failure line", str(r))


# --- two nodes in network namespaces -----------------------------------------------------------

def case_two_node_contract(*_):
    """srun -N 2: NODE_RANK, LOCAL_RANK, LOCAL_WORLD_SIZE and MASTER_ADDR across two hosts, then
    the MPI probe: MPI_Allreduce over TCP between them and a TCP rendezvous at MASTER_ADDR."""
    c = cluster(2)
    if not c:
        return SKIP
    first = c.names[0]
    r = srun(c, ["-N", "2", "--ntasks-per-node", "2", COHORT_RUN, "sh", "-c",
                 REPORT + "; echo HOST=$(hostname)"])
    check(r.rc == 0, "srun -N 2 succeeds", str(r))
    envs = check_contract(r, world=4, nodes=2, master_addr=first, run_id_prefix="slurm-",
                          local_of=lambda k: k % 2, node_of=lambda k: k // 2)
    hosts = {k: next(l[5:] for l in lines if l.startswith("HOST="))
             for k, lines in by_rank(r.out).items()}
    check(hosts == {0: first, 1: first, 2: c.names[1], 3: c.names[1]},
          f"ranks 0-1 on {first}, 2-3 on {c.names[1]}: {hosts}")
    # Uneven: 2 tasks on the first node, 1 on the second.
    r = srun(c, ["-N", "2", "-n", "3", COHORT_RUN, "sh", "-c", REPORT])
    check(r.rc == 0, "srun -N 2 -n 3 succeeds", str(r))
    check_contract(r, world=3, nodes=2, master_addr=first, run_id_prefix="slurm-",
                   local_of=lambda k: [0, 1, 0][k], node_of=lambda k: [0, 0, 1][k])
    r = srun(c, ["-N", "2", "--ntasks-per-node", "2", COHORT_RUN, PROBE], timeout=90)
    check(r.rc == 0 and "probe summary: 4 ranks on 2 hosts, all_reduce=6" in r.out,
          "MPI_Allreduce across the two nodes, rendezvous at MASTER_ADDR:MASTER_PORT", str(r))
    for k in range(4):
        check(f"[{k}] probe ok rank={k} local={k % 2}/2 node={k // 2}/2" in r.out,
              f"rank {k}'s probe line", str(r))


def case_two_node_sbatch(*_):
    """sbatch slurm/multi-node.sbatch on both nodes runs the MPI probe to completion."""
    c = cluster(2)
    if not c:
        return SKIP
    out = os.path.join(c.dir, "sbatch-multi.out")
    rc, state = sbatch(c, ["-o", out, "--nodes", "2", "--ntasks-per-node", "2", "--time", "5",
                           os.path.join(SOURCE_DIR, "slurm", "multi-node.sbatch"), PROBE],
                       {"COHORT_RUN": COHORT_RUN})
    text = open(out).read() if os.path.exists(out) else "(no output file)"
    print(f"--- {out}:\n{text}")
    check(rc == 0 and state == "COMPLETED", "the batch job completes with exit 0", text)
    check("probe summary: 4 ranks on 2 hosts, all_reduce=6" in text, "the probe's summary", text)
    check(f"on 2 nodes ({c.names[0][:-1]}[1-2])" in text, "the template's banner", text)


def case_two_node_mpirun(*_):
    """mpirun inside a two-node allocation (it starts its daemons through srun): the Open MPI rules
    for NODE_RANK (the node's daemon), GROUP_WORLD_SIZE and MASTER_ADDR (the allocation's first
    node) across real hosts, checked by the contract and the MPI probe."""
    c = cluster(2)
    if not c:
        return SKIP
    script = os.path.join(c.dir, "mpirun-two.sh")
    with open(script, "w") as f:
        f.write("#!/bin/bash\n"
                f"mpirun -np 4 {COHORT_RUN} sh -c {shlex.quote(REPORT)} || exit $?\n"
                f"mpirun -np 4 {COHORT_RUN} {PROBE}\n")
    out, err = os.path.join(c.dir, "mpirun-two.out"), os.path.join(c.dir, "mpirun-two.err")
    rc, state = sbatch(c, ["-o", out, "-e", err, "--nodes", "2", "--ntasks-per-node", "2",
                           "--time", "5", script])
    job = Result(rc, open(out).read(), open(err).read(), 0)
    print(f"--- job output:\n{job}")
    check(rc == 0 and state == "COMPLETED", "the batch job completes with exit 0", str(job))
    contract = Result(0, "\n".join(l for l in job.out.splitlines() if "probe" not in l),
                      job.err, 0)
    check_contract(contract, world=4, nodes=2, master_addr=c.names[0], run_id_prefix="ompi-",
                   local_of=lambda k: k % 2, node_of=lambda k: k // 2)
    check("probe summary: 4 ranks on 2 hosts, all_reduce=6" in job.out, "the probe passes", str(job))


def case_standalone_in_job(*_):
    """cohort-run --nproc-per-node 3 in the batch script of a two-node job keeps its 3 ranks on the
    batch node (mpirun would otherwise spread them over the allocation's slots)."""
    c = cluster(2)
    if not c:
        return SKIP
    script = os.path.join(c.dir, "standalone-in-job.sh")
    with open(script, "w") as f:
        f.write(f"#!/bin/bash\n{COHORT_RUN} --nproc-per-node 3 sh -c {shlex.quote(REPORT)}\n")
    out, err = os.path.join(c.dir, "standalone.out"), os.path.join(c.dir, "standalone.err")
    rc, state = sbatch(c, ["-o", out, "-e", err, "--nodes", "2", "--ntasks-per-node", "2",
                           "--time", "5", script])
    job = Result(rc, open(out).read(), open(err).read(), 0)
    print(f"--- job output:\n{job}")
    check(rc == 0 and state == "COMPLETED", "the batch job completes with exit 0", str(job))
    check_contract(job, world=3, nodes=1, master_addr="127.0.0.1", run_id_prefix="local-")


CASES = {name[5:]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    sys.exit(main(CASES))
