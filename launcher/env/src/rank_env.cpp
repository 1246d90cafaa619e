#include "cohort/env/rank_env.h"

#include <cstdint>
#include <string>

#include "rank_env-impl.h"

namespace cohort::env {

const char* to_string(Launcher launcher) {
  switch (launcher) {
    case Launcher::open_mpi: return "Open MPI (mpirun)";
    case Launcher::slurm: return "Slurm (srun)";
    case Launcher::contract: return "an existing rank contract (RANK, WORLD_SIZE, ...)";
  }
  return "?";
}

std::optional<Launcher> detect_launcher(const Environment& env) {
  // Open MPI first: under mpirun inside a Slurm allocation every rank inherits SLURM_PROCID=0.
  if (env.has("OMPI_COMM_WORLD_RANK")) return Launcher::open_mpi;
  // An sbatch script has SLURM_PROCID=0 too, but only srun's tasks have a step id.
  if (env.has("SLURM_PROCID") && (env.has("SLURM_STEP_ID") || env.has("SLURM_STEPID")))
    return Launcher::slurm;
  if (env.has("RANK") && env.has("WORLD_SIZE")) return Launcher::contract;
  return std::nullopt;
}

int derived_master_port(const std::string& key) {
  std::uint32_t h = 2166136261u;  // FNV-1a, 32 bit: stable across compilers, unlike std::hash
  for (unsigned char c : key) {
    h ^= c;
    h *= 16777619u;
  }
  return 10000 + static_cast<int>(h % 20000u);
}

RankEnv RankEnv::from_launcher(const Environment& env, const LaunchOverrides& overrides) {
  auto launcher = detect_launcher(env);
  if (!launcher) {
    std::string found = env.has("PMIX_RANK")
                            ? "PMIX_RANK=" + *env.get("PMIX_RANK") +
                                  " but neither OMPI_COMM_WORLD_SIZE nor an srun step "
                                  "(SLURM_STEP_ID) to say how many ranks there are"
                        : env.has("SLURM_PROCID")
                            ? "SLURM_PROCID but no SLURM_STEP_ID: this is an sbatch/salloc shell, "
                              "not a task started by srun"
                            : "none of them";
    throw EnvError(
        "no launcher found: expected the variables of mpirun (OMPI_COMM_WORLD_RANK, ...), of an "
        "srun step (SLURM_PROCID with SLURM_STEP_ID) or of the rank contract (RANK, WORLD_SIZE, "
        "...); found " + found + ". Start the program with `srun cohort-run ...`, `mpirun -np N "
        "cohort-run ...`, or `cohort-run --nproc-per-node N ...` to start N ranks here.");
  }
  if (*launcher == Launcher::open_mpi) return detail::from_open_mpi(env, overrides);
  if (*launcher == Launcher::slurm) return detail::from_slurm(env, overrides);
  RankEnv r = from_contract(env);
  if (overrides.master_addr) r.master_addr = *overrides.master_addr;
  if (overrides.master_port) r.master_port = *overrides.master_port;
  r.validate();
  return r;
}

RankEnv RankEnv::from_contract(const Environment& env) {
  const std::string origin = "the rank contract";
  RankEnv r;
  r.launcher = Launcher::contract;
  r.origin = "RANK, WORLD_SIZE, ... as already set";
  r.rank = detail::required_int(env, "RANK", origin);
  r.world_size = detail::required_int(env, "WORLD_SIZE", origin, 1);
  r.local_rank = detail::required_int(env, "LOCAL_RANK", origin);
  r.local_world_size = detail::required_int(env, "LOCAL_WORLD_SIZE", origin, 1);
  auto node_rank = get_int(env, "NODE_RANK");
  r.node_rank = node_rank ? *node_rank : detail::required_int(env, "GROUP_RANK", origin);
  // torchrun does not always set GROUP_WORLD_SIZE; with equal nodes this is the node count.
  auto nodes = get_int(env, "GROUP_WORLD_SIZE", 1);
  r.num_nodes = nodes ? *nodes : (r.world_size + r.local_world_size - 1) / r.local_world_size;
  r.master_addr = detail::required(env, "MASTER_ADDR", origin);
  r.master_port = parse_int("MASTER_PORT", detail::required(env, "MASTER_PORT", origin), 1, 65535);
  r.run_id = "contract-" + r.master_addr + "-" + std::to_string(r.master_port);
  detail::read_cohort_vars(env, r);
  r.validate();
  return r;
}

void RankEnv::validate() const { detail::validate(*this, detail::FieldSources{}); }

std::vector<std::pair<std::string, std::string>> RankEnv::contract_vars() const {
  std::vector<std::pair<std::string, std::string>> v = {
      {"RANK", std::to_string(rank)},
      {"LOCAL_RANK", std::to_string(local_rank)},
      {"WORLD_SIZE", std::to_string(world_size)},
      {"LOCAL_WORLD_SIZE", std::to_string(local_world_size)},
      {"NODE_RANK", std::to_string(node_rank)},
      {"GROUP_RANK", std::to_string(node_rank)},
      {"GROUP_WORLD_SIZE", std::to_string(num_nodes)},
      {"MASTER_ADDR", master_addr},
      {"MASTER_PORT", std::to_string(master_port)},
      {"COHORT_RUN_ID", run_id},
      {"COHORT_RESTART_COUNT", std::to_string(restart_count)},
  };
  if (checkpoint_dir) v.emplace_back("COHORT_CHECKPOINT_DIR", *checkpoint_dir);
  if (daemon) v.emplace_back("COHORT_DAEMON", *daemon);
  return v;
}

namespace detail {

std::string shown(const Environment& env, const std::string& name) {
  auto v = env.get(name);
  return v ? name + "=" + *v : name + " (unset)";
}

std::string required(const Environment& env, const std::string& name, const std::string& origin) {
  auto v = env.get(name);
  if (!v)
    throw EnvError(name + " is not set, but the environment looks like " + origin +
                   ", which always sets it. Start the program through the launcher itself (srun, "
                   "mpirun or cohort-run) rather than copying its variables by hand.");
  return *v;
}

int required_int(const Environment& env, const std::string& name, const std::string& origin,
                 int min_value) {
  return parse_int(name, required(env, name, origin), min_value);
}

void read_cohort_vars(const Environment& env, RankEnv& r) {
  if (auto id = env.get("COHORT_RUN_ID"); id && !id->empty()) r.run_id = *id;
  r.restart_count = get_int(env, "COHORT_RESTART_COUNT").value_or(0);
  r.checkpoint_dir = env.get("COHORT_CHECKPOINT_DIR");
  r.daemon = env.get("COHORT_DAEMON");
}

void resolve_master(const Environment& env, const LaunchOverrides& overrides,
                    const std::string& derived_addr, const std::string& port_key, RankEnv& r) {
  if (overrides.master_addr) {
    r.master_addr = *overrides.master_addr;
  } else if (auto addr = env.get("MASTER_ADDR"); addr && !addr->empty()) {
    r.master_addr = *addr;
  } else {
    r.master_addr = derived_addr;
  }
  if (overrides.master_port) {
    r.master_port = *overrides.master_port;
  } else if (auto port = get_int(env, "MASTER_PORT", 1, 65535)) {
    r.master_port = *port;
  } else {
    r.master_port = derived_master_port(port_key);
  }
}

// Each check names the fields by the variables they came from, so that "RANK 4 is not below
// WORLD_SIZE 4" reads "(SLURM_PROCID=4, SLURM_STEP_NUM_TASKS=4)" under srun.
void validate(const RankEnv& r, const FieldSources& from) {
  auto fail = [&](const std::string& what, const std::string& vars) {
    throw EnvError(what + " (" + vars + ", from " + r.origin +
                   "): the launcher's variables disagree. Check how the job was started (the "
                   "srun/mpirun flags) and that no stale RANK/SLURM_*/OMPI_* variables were "
                   "exported into it.");
  };
  auto n = [](int v) { return std::to_string(v); };
  if (r.world_size < 1) fail("WORLD_SIZE " + n(r.world_size) + " is below 1", from.world_size);
  if (r.rank < 0 || r.rank >= r.world_size)
    fail("RANK " + n(r.rank) + " is not below WORLD_SIZE " + n(r.world_size),
         from.rank + ", " + from.world_size);
  if (r.num_nodes < 1 || r.num_nodes > r.world_size)
    fail("the number of nodes " + n(r.num_nodes) + " is not in [1, WORLD_SIZE " +
             n(r.world_size) + "]",
         from.num_nodes + ", " + from.world_size);
  if (r.node_rank < 0 || r.node_rank >= r.num_nodes)
    fail("NODE_RANK " + n(r.node_rank) + " is not below the number of nodes " + n(r.num_nodes),
         from.node_rank + ", " + from.num_nodes);
  if (r.local_world_size < 1 || r.local_world_size > r.world_size)
    fail("LOCAL_WORLD_SIZE " + n(r.local_world_size) + " is not in [1, WORLD_SIZE " +
             n(r.world_size) + "]",
         from.local_world_size + ", " + from.world_size);
  if (r.local_rank < 0 || r.local_rank >= r.local_world_size)
    fail("LOCAL_RANK " + n(r.local_rank) + " is not below LOCAL_WORLD_SIZE " +
             n(r.local_world_size),
         from.local_rank + ", " + from.local_world_size);
  if (r.master_addr.empty())
    throw EnvError("MASTER_ADDR is empty (from " + r.origin +
                   "); pass --master-addr HOST or export MASTER_ADDR");
  if (r.master_port < 1 || r.master_port > 65535)
    throw EnvError("MASTER_PORT " + n(r.master_port) + " is not in [1, 65535]");
}

}  // namespace detail
}  // namespace cohort::env
