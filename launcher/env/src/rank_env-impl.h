#pragma once
// Shared by rank_env.cpp (contract, validation) and launchers.cpp (Open MPI, Slurm mappings).

#include <string>

#include "cohort/env/rank_env.h"

namespace cohort::env::detail {

// For error messages: which variable (with its value) each field of a RankEnv came from, e.g.
// rank = "SLURM_PROCID=4". The defaults are the contract's own names.
struct FieldSources {
  std::string rank = "RANK";
  std::string local_rank = "LOCAL_RANK";
  std::string world_size = "WORLD_SIZE";
  std::string local_world_size = "LOCAL_WORLD_SIZE";
  std::string node_rank = "NODE_RANK";
  std::string num_nodes = "GROUP_WORLD_SIZE";
};

void validate(const RankEnv& r, const FieldSources& from);

// NAME=value for a variable known to be set (used to build FieldSources).
std::string shown(const Environment& env, const std::string& name);

// The value of a variable the mapping cannot do without; a missing one is an EnvError that says
// which launcher was recognised (`origin`) and what to do.
std::string required(const Environment& env, const std::string& name, const std::string& origin);
int required_int(const Environment& env, const std::string& name, const std::string& origin,
                 int min_value = 0);

// COHORT_RESTART_COUNT, COHORT_CHECKPOINT_DIR, COHORT_DAEMON, and COHORT_RUN_ID when set.
void read_cohort_vars(const Environment& env, RankEnv& r);

// MASTER_ADDR / MASTER_PORT: a flag wins, then an exported variable, then `derived_*`.
void resolve_master(const Environment& env, const LaunchOverrides& overrides,
                    const std::string& derived_addr, const std::string& port_key, RankEnv& r);

RankEnv from_open_mpi(const Environment& env, const LaunchOverrides& overrides);
RankEnv from_slurm(const Environment& env, const LaunchOverrides& overrides);

}  // namespace cohort::env::detail
