#pragma once
// What cohort-run needs from the environment besides the rank contract: the devices and cores the
// process engine already handed out, the user's own thread setting, and where to find programs.
//
//   auto env = cohort::env::Environment::from_process();
//   auto host = cohort::env::LauncherEnv::from(env);
//   if (host.cuda_visible_devices) ...   // the GPUs this process may use, as the user/Slurm said

#include <optional>
#include <string>
#include <vector>

#include "cohort/env/environment.h"

namespace cohort::env {

struct LauncherEnv {
  // CUDA_VISIBLE_DEVICES split at commas (indices or GPU-/MIG- UUIDs); set but empty means "no
  // GPU" on purpose. nullopt when unset: then cohort-run counts /dev/nvidia<N>.
  std::optional<std::vector<std::string>> cuda_visible_devices;
  // SLURM_GPUS_PER_TASK: srun --gpus-per-task already gave each task its own GPUs.
  std::optional<int> slurm_gpus_per_task;
  // OMP_NUM_THREADS as the user set it (cohort-run then leaves it alone).
  std::optional<std::string> omp_num_threads;
  // Non-empty when the user asked the process engine to bind this process to cores, naming how,
  // e.g. "mpirun --bind-to core": cohort-run keeps that binding.
  std::string cpus_bound_by;
  // mpirun bound this process on its own (its default: a core each for up to 2 ranks, else a
  // socket, which ranks share): cohort-run replaces that with its split of the node's cores.
  bool cpus_bound_by_default = false;
  std::vector<std::string> path;  // PATH, split at ':'
  std::string tmpdir;             // TMPDIR, or /tmp
  std::optional<std::string> run_id;       // COHORT_RUN_ID as exported
  std::optional<std::string> master_port;  // MASTER_PORT as exported

  static LauncherEnv from(const Environment& env);
};

}  // namespace cohort::env
