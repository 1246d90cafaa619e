#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "binding.h"
#include "cohort/env/launcher_env.h"
#include "cohort/env/rank_env.h"
#include "failure.h"
#include "line_prefixer.h"
#include "modes.h"
#include "process.h"
#include "run_dir.h"
#include "stdio_lending.h"

namespace cohort::run {
namespace {

// The GPUs of this node as CUDA indices or UUIDs, and where that came from. --gpus N caps the
// count (taking the first N of CUDA_VISIBLE_DEVICES when that is set, else 0..N-1).
std::vector<std::string> node_gpus(const Options& o, const env::LauncherEnv& le,
                                   std::string& source) {
  std::vector<std::string> ids;
  if (le.cuda_visible_devices) {
    ids = *le.cuda_visible_devices;
    std::string joined;
    for (const auto& id : ids) joined += (joined.empty() ? "" : ",") + id;
    source = "CUDA_VISIBLE_DEVICES=" + joined;
  } else {
    ids = dev_nvidia_gpus();
    source = std::to_string(ids.size()) + " /dev/nvidia<N> devices";
  }
  if (o.gpus) {
    if (!le.cuda_visible_devices) {
      ids.clear();
      for (int k = 0; k < *o.gpus; ++k) ids.push_back(std::to_string(k));
    } else if (*o.gpus > static_cast<int>(ids.size())) {
      throw UsageError("--gpus " + std::to_string(*o.gpus) + " but only " +
                       std::to_string(ids.size()) + " GPUs are visible (" + source +
                       "); lower --gpus or widen CUDA_VISIBLE_DEVICES");
    } else {
      ids.resize(static_cast<std::size_t>(*o.gpus));
    }
    source = "--gpus " + std::to_string(*o.gpus);
  }
  return ids;
}

void report_failure(const Options& o, int rank, const std::string& host, const Outcome& outcome,
                    std::int64_t when) {
  if (!o.standalone_dir.empty()) {
    // The stand-alone parent prints the one line, for whichever rank failed first.
    write_failure_record(o.standalone_dir,
                         FailureRecord{when, rank, host, outcome.exit_code, outcome.description});
  } else {
    std::fprintf(stderr, "%s\n", failure_line(rank, host, outcome.description).c_str());
    std::fflush(stderr);
  }
}

}  // namespace

void make_directories(const std::string& path) {
  for (std::size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string dir = path.substr(0, pos);
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      throw UsageError("cannot create directory " + dir + ": " + std::strerror(errno));
  }
}

int run_rank(const Options& o, const env::Environment& env, const std::string& host) {
  if (!o.standalone_dir.empty()) borrow_stdio(o.standalone_dir + "/stdio.sock");
  env::RankEnv me = env::RankEnv::from_launcher(env, {o.master_addr, o.master_port});
  if (o.nproc_per_node > 0 && o.nproc_per_node != me.local_world_size)
    throw UsageError("--nproc-per-node " + std::to_string(o.nproc_per_node) + " but " +
                     env::to_string(me.launcher) + " started " +
                     std::to_string(me.local_world_size) + " ranks on this node; under srun or "
                     "mpirun the launcher starts the ranks: drop --nproc-per-node");
  if (!o.standalone_dir.empty()) register_rank(o.standalone_dir, me.rank, getpid());
  env::LauncherEnv le = env::LauncherEnv::from(env);

  BindingInputs in;
  in.local_rank = me.local_rank;
  in.local_world_size = me.local_world_size;
  in.host = host;
  in.gpus_per_rank = o.gpus_per_rank;
  in.gpu_ids = node_gpus(o, le, in.gpu_source);
  in.gpus_bound_per_task = me.launcher == env::Launcher::slurm && le.slurm_gpus_per_task &&
                           le.cuda_visible_devices && !o.gpus;
  in.cpu_bind = o.cpu_bind;
  in.cpus = le.cpus_bound_by_default ? node_cpus() : allowed_cpus();
  in.cpus_bound_by = le.cpus_bound_by;
  Binding binding = plan_binding(in);

  env::Environment program_env = env;
  for (const auto& [name, value] : me.contract_vars()) program_env.set(name, value);
  if (binding.cuda_visible_devices) program_env.set("CUDA_VISIBLE_DEVICES", *binding.cuda_visible_devices);
  if (binding.threads > 0 && !le.omp_num_threads)
    program_env.set("OMP_NUM_THREADS", std::to_string(binding.threads));

  if (!binding.note.empty()) std::fprintf(stderr, "cohort-run: note: %s\n", binding.note.c_str());
  if (o.verbose)
    std::fprintf(stderr,
                 "cohort-run: rank %d/%d, node %d/%d (host %s), local rank %d/%d, MASTER %s:%d, "
                 "run %s, %s; contract from %s\n",
                 me.rank, me.world_size, me.node_rank, me.num_nodes, host.c_str(), me.local_rank,
                 me.local_world_size, me.master_addr.c_str(), me.master_port, me.run_id.c_str(),
                 binding.summary.c_str(), me.origin.c_str());
  std::fflush(stderr);

  ChildSpec spec;
  spec.argv = o.program;
  spec.env = program_env.to_strings();
  spec.cpus = binding.cpus;
  if (!o.log_dir.empty()) {
    make_directories(o.log_dir);
    spec.output = ChildSpec::Output::files;
    std::string base = o.log_dir + "/rank_" + std::to_string(me.rank);
    spec.stdout_path = base + ".out";
    spec.stderr_path = base + ".err";
  } else {
    spec.output = ChildSpec::Output::pipe;
  }

  SignalCatcher signals;
  Child child;
  try {
    child = spawn(spec, signals);
  } catch (const SpawnError& e) {
    report_failure(o, me.rank, host, Outcome{127, e.what()}, now_ns());
    return 127;
  }
  LinePrefixer out_prefix("[" + std::to_string(me.rank) + "] ");
  LinePrefixer err_prefix("[" + std::to_string(me.rank) + "] ");
  SuperviseOptions so;
  if (spec.output == ChildSpec::Output::pipe) {
    so.out_prefix = &out_prefix;
    so.err_prefix = &err_prefix;
  }
  SuperviseResult result = supervise(child, signals, so);
  Outcome outcome = outcome_of(result.wait_status);
  // A program that ends after we forwarded SIGTERM/SIGINT/SIGHUP was stopped, not failed: the
  // launcher is tearing the job down (often because another rank failed, which that rank's
  // cohort-run reports).
  if (outcome.failed() && result.stop_signal == 0)
    report_failure(o, me.rank, host, outcome, result.ended_ns);
  return outcome.exit_code;
}

}  // namespace cohort::run
