#!/usr/bin/python3
"""A real Slurm cluster on this machine: munged, slurmctld and one slurmd per node. The tests in
tests/slurm use it; you can too, to try the sbatch templates without a cluster (as root):

    slurm/local_cluster.py start mine --nodes 2      # prints the state directory D
    export SLURM_CONF=D/slurm.conf COHORT_RUN=$PWD/build/launcher/cohort-run
    sbatch --wait -o out.txt slurm/multi-node.sbatch /usr/bin/env; cat out.txt
    slurm/local_cluster.py stop mine --nodes 2

One node runs in this machine's own network namespace under its real hostname (so MASTER_ADDR,
the first host of the node list, resolves). Two or more nodes each get a network namespace of their
own (a bridge, a veth pair each), a hostname of their own (unshare --uts) and a bind-mounted
/etc/hosts naming every node: that is "several hosts" as far as Slurm, PMIx and Open MPI can tell.

Everything lives in one state directory under /tmp (short: unix socket paths are limited to 108
bytes); its name, the ports, namespace names and the subnet are derived from a key (the build
directory), so two build trees can run their clusters side by side. What was started is recorded
in state.json as soon as it exists, so `stop` (a ctest FIXTURES_CLEANUP test, or the `with` block)
can tear everything down even when the start or a test failed half-way.

    local_cluster.py start KEY --nodes N   start, print the state directory
    local_cluster.py stop KEY --nodes N    stop daemons, delete namespaces (idempotent)
    local_cluster.py check --nodes N       exit 77 with the reason when it cannot run here
"""
import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

SKIP = 77  # ctest SKIP_RETURN_CODE, used by tests/slurm


def _tag(key, nodes):
    return hashlib.sha1(f"{key}:{nodes}".encode()).hexdigest()[:6]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, check=True, timeout=30, **kw):
    return subprocess.run(cmd, check=check, timeout=timeout, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kw)


def prerequisites(nodes):
    """Why a cluster of `nodes` cannot run here, or None."""
    need = ["munged", "slurmctld", "slurmd", "srun", "sbatch", "scontrol", "sinfo", "runuser"]
    if nodes > 1:
        need += ["ip", "nsenter", "unshare"]
    missing = [t for t in need if not shutil.which(t)]
    if missing:
        return f"missing {', '.join(missing)} (apt: slurmctld slurmd slurm-client munge iproute2)"
    if os.geteuid() != 0:
        return "the test cluster runs its daemons as root; run the slurm tests as root"
    if not os.path.exists("/etc/munge/munge.key"):
        return "no /etc/munge/munge.key (apt: munge creates it)"
    if nodes > 1:
        probe = f"cohprobe{os.getpid()}"
        r = run(["ip", "netns", "add", probe], check=False)
        run(["ip", "netns", "delete", probe], check=False)
        if r.returncode != 0:
            return f"cannot create network namespaces here: {r.stdout.strip()}"
    return None


class Cluster:
    def __init__(self, key, nodes=1):
        self.nodes = nodes
        self.tag = _tag(key, nodes)
        self.dir = f"/tmp/cohort-slurm-{self.tag}"
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.state_file = os.path.join(self.dir, "state.json")
        self.state = {"pids": [], "netns": [], "links": []}
        h = int(self.tag, 16)
        self.subnet = f"10.{200 + h % 50}.{(h // 50) % 250}"
        if nodes == 1:
            self.names = [socket.gethostname().split(".")[0]]
        else:
            self.names = [f"c{self.tag}n{i}" for i in range(1, nodes + 1)]

    # --- environment for clients (srun, sbatch, scontrol) and for the programs they start
    def env(self, extra=None):
        e = dict(os.environ)
        e["SLURM_CONF"] = self.conf
        e["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        e["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        for k in list(e):
            # A cluster of our own: nothing from a surrounding allocation may leak in.
            if k.startswith(("SLURM_", "OMPI_COMM_WORLD", "PMIX_")) and k != "SLURM_CONF":
                del e[k]
        e.update(extra or {})
        return e

    def _save(self):
        with open(self.state_file + ".tmp", "w") as f:
            json.dump(self.state, f)
        os.replace(self.state_file + ".tmp", self.state_file)

    def _spawn(self, cmd, log, user=None):
        out = open(os.path.join(self.dir, log), "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, env=self.env())
        out.close()
        self.state["pids"].append(p.pid)
        self._save()
        return p

    def _wait(self, what, predicate, timeout=30, proc=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{what}: the daemon exited with status {proc.returncode}; "
                                   f"see the logs in {self.dir}")
            time.sleep(0.1)
        raise RuntimeError(f"timed out after {timeout} s waiting for {what}; logs in {self.dir}")

    # --- start
    def start(self):
        stop(self)  # whatever an earlier, killed run left behind
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self._save()
        self._start_munge()
        if self.nodes > 1:
            self._make_network()
        self._write_conf()
        ctld = self._spawn(["slurmctld", "-D", "-i", "-f", self.conf], "slurmctld.out")
        self.state["slurmctld"] = ctld.pid
        self._save()
        self._wait("slurmctld to answer", lambda: run(["scontrol", "ping"], check=False,
                                                        env=self.env()).stdout.count("UP") > 0,
                   proc=ctld)
        slurmds = [self._start_slurmd(i) for i in range(self.nodes)]
        def all_idle():
            out = run(["sinfo", "-h", "-N", "-o", "%N %t"], check=False, env=self.env()).stdout
            states = dict(line.split() for line in out.splitlines() if line.strip())
            return all(states.get(n) == "idle" for n in self.names)
        for d in slurmds:
            if d.poll() is not None:
                raise RuntimeError(f"slurmd exited with status {d.returncode}; logs in {self.dir}")
        self._wait(f"nodes {', '.join(self.names)} to be idle", all_idle)
        return self

    def _start_munge(self):
        mdir = os.path.join(self.dir, "munge")
        os.makedirs(mdir, exist_ok=True)
        os.chmod(mdir, 0o755)
        shutil.chown(mdir, "munge", "munge")
        self.munge_socket = os.path.join(mdir, "munge.socket")
        p = self._spawn(["runuser", "-u", "munge", "--", "munged", "-F", "--force",
                         f"--socket={self.munge_socket}", f"--pid-file={mdir}/munged.pid",
                         f"--log-file={mdir}/munged.log", f"--seed-file={mdir}/munged.seed"],
                        "munged.out")
        self.state["munged"] = p.pid
        self._save()
        self._wait("munged's socket", lambda: os.path.exists(self.munge_socket), proc=p)

    def _make_network(self):
        bridge = f"cohbr{self.tag}"
        run(["ip", "link", "add", bridge, "type", "bridge"])
        self.state["links"].append(bridge)
        self._save()
        run(["ip", "addr", "add", f"{self.subnet}.1/24", "dev", bridge])
        run(["ip", "link", "set", bridge, "up"])
        hosts = "127.0.0.1 localhost\n" + f"{self.subnet}.1 cohort-ctl-{self.tag}\n" + "".join(
            f"{self.subnet}.{i + 2} {n}\n" for i, n in enumerate(self.names))
        with open(os.path.join(self.dir, "hosts"), "w") as f:
            f.write(hosts)
        for i, name in enumerate(self.names):
            ns, veth = f"coh{self.tag}n{i}", f"coh{self.tag}v{i}"
            run(["ip", "netns", "add", ns])
            self.state["netns"].append(ns)
            run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns])
            self.state["links"].append(veth)
            self._save()
            run(["ip", "link", "set", veth, "master", bridge, "up"])
            run(["ip", "-n", ns, "addr", "add", f"{self.subnet}.{i + 2}/24", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _write_conf(self):
        d = self.dir
        if self.nodes == 1:
            ctl = f"{self.names[0]}(127.0.0.1)"
            node_lines = f"NodeName={self.names[0]} NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN\n"
        else:
            ctl = f"{socket.gethostname().split('.')[0]}({self.subnet}.1)"
            node_lines = "".join(f"NodeName={n} NodeAddr={self.subnet}.{i + 2} CPUs=8 State=UNKNOWN\n"
                                 for i, n in enumerate(self.names))
        for sub in ["state", "spool", "tmp", "log"]:
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        first_job = 1000 + int(self.tag, 16) % 50000
        conf = f"""# Written by slurm/local_cluster.py: a throw-away cluster on one machine.
ClusterName=cohort{self.tag}
SlurmctldHost={ctl}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/%n
TmpFS={d}/tmp/%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
MpiDefault=pmix
ReturnToService=2
SlurmdTimeout=10
KillWait=2
MessageTimeout=10
InactiveLimit=0
FirstJobId={first_job}
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
{node_lines}PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.conf, "w") as f:
            f.write(conf)
        for n in self.names:
            os.makedirs(os.path.join(d, "spool", n), exist_ok=True)
            os.makedirs(os.path.join(d, "tmp", n), exist_ok=True)

    def _start_slurmd(self, i):
        name = self.names[i]
        cmd = ["slurmd", "-D", "-N", name, "-f", self.conf]
        if self.nodes > 1:
            # nsenter, not `ip netns exec`: the latter remounts /sys and hides the cgroup tree
            # slurmd reads. unshare gives the node its own hostname and /etc/hosts.
            script = (f"hostname {name} && mount --bind {self.dir}/hosts /etc/hosts && "
                      f"exec {' '.join(cmd)}")
            cmd = ["nsenter", f"--net=/run/netns/coh{self.tag}n{i}", "unshare", "--uts", "--mount",
                   "sh", "-c", script]
        return self._spawn(cmd, f"slurmd.{name}.out")

    # --- running things on the cluster
    def wait_idle(self, timeout=30):
        """Until no job is left (pending, running or completing), so a timing starts clean."""
        self._wait("the queue to empty", lambda: run(
            ["squeue", "-h", "-o", "%i"], check=False, env=self.env()).stdout.strip() == "",
            timeout=timeout)

    def srun(self, args, timeout=60, extra_env=None):
        return subprocess.run(["srun"] + args, env=self.env(extra_env), timeout=timeout,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        stop(self)


def _alive(pid):
    """Running, i.e. neither gone nor a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _kill(pid):
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(pid):
            return
        try:
            os.killpg(pid, sig)  # each daemon leads its own session (start_new_session)
        except ProcessLookupError:
            return
        t = time.time() + 2
        while time.time() < t and _alive(pid):
            time.sleep(0.05)


def stop(cluster):
    """Stop what state.json says was started; safe to call twice or with nothing running."""
    try:
        with open(cluster.state_file) as f:
            state = json.load(f)
    except (OSError, ValueError):
        state = {"pids": [], "netns": [], "links": []}
    slurm_pids = [p for p in state["pids"] if p != state.get("munged")]
    if state.get("slurmctld") and _alive(state["slurmctld"]):
        run(["scontrol", "shutdown"], check=False, timeout=10, env=cluster.env())
        # slurmctld and the slurmds exit on shutdown; whatever is left after 5 s is killed.
        deadline = time.time() + 5
        while time.time() < deadline and any(_alive(p) for p in slurm_pids):
            time.sleep(0.05)
    for pid in slurm_pids:
        _kill(pid)
    if state.get("munged"):
        _kill(state["munged"])
    for ns in state["netns"]:
        _kill_netns_processes(ns)
        run(["ip", "netns", "delete", ns], check=False)
    for link in reversed(state["links"]):
        run(["ip", "link", "delete", link], check=False)
    if os.path.isdir(cluster.dir):
        shutil.rmtree(cluster.dir, ignore_errors=True)


def _kill_netns_processes(ns):
    """Stray job processes (slurmstepd, ranks) still inside a namespace about to be deleted."""
    r = run(["ip", "netns", "pids", ns], check=False)
    for tok in r.stdout.split():
        if tok.isdigit():
            try:
                os.kill(int(tok), signal.SIGKILL)
            except ProcessLookupError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["start", "stop", "check"])
    ap.add_argument("key", nargs="?", default="default")
    ap.add_argument("--nodes", type=int, default=1)
    a = ap.parse_args()
    why = prerequisites(a.nodes)
    if a.action == "check":
        print(f"SKIP: {why}" if why else "ok")
        return SKIP if why else 0
    c = Cluster(a.key, a.nodes)
    if a.action == "stop":
        stop(c)
        print(f"cluster {c.dir} stopped")
        return 0
    if why:
        print(f"SKIP: a Slurm cluster cannot run here: {why}")
        return SKIP
    try:
        c.start()
    except Exception as e:
        print(f"cluster start failed: {e}", file=sys.stderr)
        for log in ["slurmctld.out", "log/slurmctld.log"] + [f"slurmd.{n}.out" for n in c.names]:
            p = os.path.join(c.dir, log)
            if os.path.exists(p):
                print(f"--- {log}:\n" + open(p).read()[-3000:], file=sys.stderr)
        stop(c)
        return 1
    print(c.dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
