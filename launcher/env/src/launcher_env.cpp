#include "cohort/env/launcher_env.h"

#include <string>
#include <vector>

namespace cohort::env {
namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (start <= s.size()) {
    std::size_t end = s.find(sep, start);
    if (end == std::string::npos) end = s.size();
    parts.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

}  // namespace

LauncherEnv LauncherEnv::from(const Environment& env) {
  LauncherEnv h;
  if (auto devices = env.get("CUDA_VISIBLE_DEVICES")) {
    std::vector<std::string> ids;
    if (!devices->empty()) {
      for (const auto& id : split(*devices, ','))
        if (!id.empty()) ids.push_back(id);
    }
    h.cuda_visible_devices = ids;
  }
  h.slurm_gpus_per_task = get_int(env, "SLURM_GPUS_PER_TASK");
  h.omp_num_threads = env.get("OMP_NUM_THREADS");

  // mpirun binds by default (a core each for up to 2 ranks, else a socket) and says only
  // OMPI_MCA_orte_bound_at_launch=1; an explicit --bind-to also sets the policy variable. srun's
  // --cpu-bind (or a task/affinity default) exports SLURM_CPU_BIND_TYPE; "none" means unbound.
  auto policy = env.get("OMPI_MCA_hwloc_base_binding_policy");
  bool ompi = env.has("OMPI_COMM_WORLD_RANK");
  if (ompi && policy && !policy->empty() && *policy != "none") {
    h.cpus_bound_by = "mpirun --bind-to " + *policy;
  } else if (ompi && !policy && env.get("OMPI_MCA_orte_bound_at_launch") == "1") {
    h.cpus_bound_by_default = true;
  } else if (auto bind = env.get("SLURM_CPU_BIND_TYPE");
             bind && !bind->empty() && bind->rfind("none", 0) != 0 && env.has("SLURM_STEP_ID")) {
    h.cpus_bound_by = "srun --cpu-bind (SLURM_CPU_BIND_TYPE=" + *bind + ")";
  }

  for (const auto& dir : split(env.get("PATH").value_or("/usr/local/bin:/usr/bin:/bin"), ':'))
    if (!dir.empty()) h.path.push_back(dir);
  h.tmpdir = env.get("TMPDIR").value_or("/tmp");
  if (h.tmpdir.empty()) h.tmpdir = "/tmp";
  h.run_id = env.get("COHORT_RUN_ID");
  h.master_port = env.get("MASTER_PORT");
  return h;
}

}  // namespace cohort::env
