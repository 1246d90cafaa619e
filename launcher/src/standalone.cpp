#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cohort/env/launcher_env.h"
#include "failure.h"
#include "modes.h"
#include "process.h"
#include "run_dir.h"
#include "stdio_lending.h"

namespace cohort::run {
namespace {

std::string find_in_path(const std::string& name, const std::vector<std::string>& path) {
  for (const auto& dir : path) {
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string self_executable() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) throw UsageError("cannot find cohort-run's own path (/proc/self/exe)");
  return std::string(buf, static_cast<std::size_t>(n));
}

// A port nobody listens on right now, for MASTER_PORT: on one machine a free port is better than
// a derived one, which could collide with another local job.
int free_local_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0) close(fd);
  if (port == 0) throw UsageError("cannot find a free TCP port on 127.0.0.1 for MASTER_PORT; "
                                  "pass --master-port PORT");
  return port;
}

void remove_run_dir(const std::string& dir) {
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
  rmdir(dir.c_str());
}

}  // namespace

int run_standalone(const Options& o, int argc, char** argv, const env::Environment& env,
                   const std::string& host) {
  env::LauncherEnv le = env::LauncherEnv::from(env);
  std::string mpirun = o.mpirun.empty() ? find_in_path("mpirun", le.path) : o.mpirun;
  if (mpirun.empty() || access(mpirun.c_str(), X_OK) != 0) {
    std::string path;
    for (const auto& dir : le.path) path += (path.empty() ? "" : ":") + dir;
    throw UsageError(
        "stand-alone mode (--nproc-per-node " + std::to_string(o.nproc_per_node) +
        ") starts the ranks with `mpirun -np N cohort-run ...`, but " +
        (o.mpirun.empty() ? "no mpirun was found on PATH (" + path + ")"
                          : "--mpirun " + o.mpirun + " is not an executable file") +
        ". Install Open MPI (Debian: apt install openmpi-bin), pass --mpirun /path/to/mpirun, or "
        "start the ranks yourself with srun or mpirun.");
  }

  std::string tmpl = le.tmpdir + "/cohort-run.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data()))
    throw UsageError("cannot create a run directory under " + le.tmpdir + " (TMPDIR)");
  std::string run_dir(buf.data());

  env::Environment mpirun_env = env;
  if (!le.run_id) mpirun_env.set("COHORT_RUN_ID", "local-" + host + "-" + std::to_string(getpid()));
  if (!o.master_port && !le.master_port)
    mpirun_env.set("MASTER_PORT", std::to_string(free_local_port()));

  // --host localhost:N: all N ranks here, even inside a Slurm allocation of several nodes (which
  // mpirun would otherwise fill slot by slot); --oversubscribe: N may exceed the cores
  // (cohort-run shares them and says so); --bind-to none: the ranks' cohort-run splits the cores
  // itself; -q: the summary line below replaces mpirun's multi-line abort message.
  ChildSpec spec;
  // Found on PATH: run it by name, as a user would. Open MPI treats an absolute mpirun path as
  // --prefix, and a merged-/usr PATH entry such as /bin/mpirun then gives the prefix "/".
  std::string n = std::to_string(o.nproc_per_node);
  spec.argv = {o.mpirun.empty() ? std::string("mpirun") : o.mpirun, "-np", n, "--host",
               "localhost:" + n, "--oversubscribe", "--bind-to", "none", "-q"};
  if (geteuid() == 0) spec.argv.push_back("--allow-run-as-root");
  spec.argv.push_back(self_executable());
  spec.argv.push_back("--standalone-run-dir");
  spec.argv.push_back(run_dir);
  for (int k = 1; k < argc; ++k) spec.argv.push_back(argv[k]);
  spec.env = mpirun_env.to_strings();
  spec.output = ChildSpec::Output::inherit;  // the ranks' lines arrive prefixed already
  spec.own_process_group = false;            // so mpirun can still read a terminal's stdin
  spec.parent_death_signal = SIGTERM;        // lets mpirun stop its ranks if we are killed

  int code = 0;
  {
    SignalCatcher signals;
    StdioLender lender(run_dir + "/stdio.sock");  // after SignalCatcher: its thread inherits the mask
    Child child;
    try {
      child = spawn(spec, signals);
    } catch (const SpawnError& e) {
      remove_run_dir(run_dir);
      throw UsageError(e.what());
    }
    // Signals go to the ranks' cohort-runs directly (see run_dir.h); to mpirun only while some
    // rank has not registered yet, and never a terminal's, which mpirun (in our process group)
    // got already.
    SuperviseOptions so;
    pid_t mpirun_pid = child.pid;
    int nproc = o.nproc_per_node;
    so.forward = [&run_dir, mpirun_pid, nproc](int sig, bool from_terminal) {
      std::vector<pid_t> ranks = registered_ranks(run_dir);
      for (pid_t pid : ranks) kill(pid, sig);
      if (static_cast<int>(ranks.size()) < nproc && !from_terminal) kill(mpirun_pid, sig);
    };
    so.stop_grace_ms = 0;             // a stop request reaches us before mpirun can end
    SuperviseResult result = supervise(child, signals, so);
    Outcome mpirun_outcome = outcome_of(result.wait_status);
    code = mpirun_outcome.exit_code;
    if (auto first = first_failure(run_dir)) {
      std::fprintf(stderr, "%s\n", failure_line(first->rank, first->host, first->description).c_str());
      code = first->exit_code;
    } else if (result.stop_signal != 0) {
      std::fprintf(stderr, "cohort-run: stopped by %s\n", signal_name(result.stop_signal).c_str());
      code = 128 + result.stop_signal;
    } else if (mpirun_outcome.failed()) {
      std::fprintf(stderr,
                   "cohort-run: mpirun failed (%s) before any rank reported a failure; see its "
                   "messages above\n",
                   mpirun_outcome.description.c_str());
    }
  }
  remove_run_dir(run_dir);
  return code;
}

}  // namespace cohort::run
