#pragma once
// The rank contract: who this process is in a multi-process job, torchrun-compatible.
//
//   RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, NODE_RANK (= GROUP_RANK), GROUP_WORLD_SIZE
//   (number of nodes), MASTER_ADDR, MASTER_PORT, COHORT_RUN_ID, COHORT_RESTART_COUNT, and, passed
//   through when set, COHORT_CHECKPOINT_DIR and COHORT_DAEMON.
//
// Two ways in:
//  * RankEnv::from_launcher(env) — what cohort-run does: map the process engine's own variables
//    (Open MPI's OMPI_COMM_WORLD_*, PMIX_RANK, Slurm's SLURM_*) to the contract;
//  * RankEnv::from_contract(env) — what a program started by cohort-run does: read the contract.
//
//   auto env = cohort::env::Environment::from_process();
//   auto me = cohort::env::RankEnv::from_contract(env);
//   if (me.rank == 0) std::printf("%d ranks on %d nodes, master %s:%d\n", me.world_size,
//                                 me.num_nodes, me.master_addr.c_str(), me.master_port);
//
// Both validate the result (RANK < WORLD_SIZE, ...) and throw EnvError naming the variables that
// disagree. The precedence and the rules for MASTER_ADDR/MASTER_PORT are in docs/launching.md.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cohort/env/environment.h"

namespace cohort::env {

// Which process engine started this process.
enum class Launcher {
  open_mpi,  // mpirun/orted: OMPI_COMM_WORLD_* (wins even inside a Slurm allocation)
  slurm,     // an srun step: SLURM_PROCID with SLURM_STEP_ID (PMIX_RANK preferred for the rank)
  contract,  // RANK/WORLD_SIZE/... already set (torchrun, another cohort-run, cohortd)
};
const char* to_string(Launcher launcher);

// The process engine that started this process, or nullopt when there is none (a plain shell; an
// sbatch script, which has SLURM_PROCID but no SLURM_STEP_ID, counts as none).
std::optional<Launcher> detect_launcher(const Environment& env);

// What cohort-run's flags can override (both win over the environment and the derived defaults).
struct LaunchOverrides {
  std::optional<std::string> master_addr;
  std::optional<int> master_port;
};

struct RankEnv {
  Launcher launcher = Launcher::contract;
  int rank = 0;              // RANK
  int local_rank = 0;        // LOCAL_RANK: index among this node's ranks
  int world_size = 1;        // WORLD_SIZE
  int local_world_size = 1;  // LOCAL_WORLD_SIZE: ranks on this node
  int node_rank = 0;         // NODE_RANK and GROUP_RANK
  int num_nodes = 1;         // GROUP_WORLD_SIZE
  std::string master_addr;   // MASTER_ADDR: host of rank 0
  int master_port = 0;       // MASTER_PORT
  std::string run_id;        // COHORT_RUN_ID: same on every rank of one launch
  int restart_count = 0;     // COHORT_RESTART_COUNT: 0 on the first generation
  std::optional<std::string> checkpoint_dir;  // COHORT_CHECKPOINT_DIR, passed through
  std::optional<std::string> daemon;          // COHORT_DAEMON (host:port) when supervised
  std::string origin;  // where the values came from, for messages: "OMPI_COMM_WORLD_*", ...

  // From the launcher's variables; throws EnvError when there is no launcher or it is inconsistent.
  static RankEnv from_launcher(const Environment& env, const LaunchOverrides& overrides = {});
  // From the contract variables cohort-run sets; throws EnvError when one is missing or wrong.
  static RankEnv from_contract(const Environment& env);

  // Throws EnvError unless 0 <= rank < world_size, 0 <= local_rank < local_world_size <=
  // world_size, 0 <= node_rank < num_nodes <= world_size and master_addr/port are usable.
  void validate() const;

  // The contract as NAME/value pairs, in the order docs/launching.md lists them.
  std::vector<std::pair<std::string, std::string>> contract_vars() const;
};

// The port derived from a job identity when neither --master-port nor MASTER_PORT says otherwise:
// 10000 + FNV-1a(key) mod 20000, i.e. in [10000, 30000): below Linux's ephemeral range, the same
// on every rank of the job, different (almost always) for different jobs and steps.
int derived_master_port(const std::string& key);

}  // namespace cohort::env
