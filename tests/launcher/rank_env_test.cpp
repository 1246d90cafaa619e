// The rank contract from launcher variables (cohort::env::RankEnv): Slurm, Open MPI, precedence,
// MASTER_ADDR/PORT rules, pass-through variables, and the errors for inconsistent environments.
// The variable sets below are what srun and mpirun really export (see tests/slurm for the live
// versions).
#include "cohort/env/rank_env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

using cohort::env::Environment;
using cohort::env::EnvError;
using cohort::env::LaunchOverrides;
using cohort::env::Launcher;
using cohort::env::RankEnv;
using Vars = std::map<std::string, std::string>;

namespace {

// Task `procid` of `srun -N 2 -n 4` with 3 tasks on node01 and 1 on node02.
Vars srun_task(int procid, int nodeid, int localid) {
  return {{"SLURM_JOB_ID", "4242"},           {"SLURM_STEP_ID", "0"},
          {"SLURM_PROCID", std::to_string(procid)}, {"SLURM_LOCALID", std::to_string(localid)},
          {"SLURM_NODEID", std::to_string(nodeid)}, {"SLURM_STEP_NUM_TASKS", "4"},
          {"SLURM_NTASKS", "4"},               {"SLURM_STEP_NODELIST", "node[01-02]"},
          {"SLURM_JOB_NODELIST", "node[01-02],node07"}, {"SLURM_STEP_NUM_NODES", "2"},
          {"SLURM_STEP_TASKS_PER_NODE", "3,1"}, {"SLURM_TASKS_PER_NODE", "3,1,2"}};
}

// Rank `rank` of `mpirun -np 4` on one host.
Vars mpirun_rank(int rank) {
  return {{"OMPI_COMM_WORLD_RANK", std::to_string(rank)},
          {"OMPI_COMM_WORLD_SIZE", "4"},
          {"OMPI_COMM_WORLD_LOCAL_RANK", std::to_string(rank)},
          {"OMPI_COMM_WORLD_LOCAL_SIZE", "4"},
          {"OMPI_MCA_orte_num_nodes", "1"},
          {"OMPI_MCA_ess_base_jobid", "284819457"},
          {"OMPI_MCA_orte_hnp_uri", "284819456.0;tcp://192.0.2.2:35273;tcp6://[fd00::2]:47211"},
          {"OMPI_MCA_orte_local_daemon_uri", "284819456.0;tcp://192.0.2.2:35273"},
          {"PMIX_RANK", std::to_string(rank)}};
}

std::string error_of(const Vars& vars, const LaunchOverrides& o = {}) {
  try {
    RankEnv::from_launcher(Environment(vars), o);
  } catch (const EnvError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(RankEnvSlurm, MapsAnSrunTaskToTheContract) {
  RankEnv r = RankEnv::from_launcher(Environment(srun_task(3, 1, 0)));
  EXPECT_EQ(r.launcher, Launcher::slurm);
  EXPECT_EQ(r.rank, 3);
  EXPECT_EQ(r.world_size, 4);
  EXPECT_EQ(r.local_rank, 0);
  EXPECT_EQ(r.local_world_size, 1);  // entry 1 of "3,1"
  EXPECT_EQ(r.node_rank, 1);
  EXPECT_EQ(r.num_nodes, 2);         // the step's nodes, not the job's three
  EXPECT_EQ(r.master_addr, "node01");
  EXPECT_EQ(r.run_id, "slurm-4242.0");
  EXPECT_EQ(r.restart_count, 0);
  EXPECT_GE(r.master_port, 10000);
  EXPECT_LT(r.master_port, 30000);

  RankEnv r0 = RankEnv::from_launcher(Environment(srun_task(0, 0, 0)));
  EXPECT_EQ(r0.local_world_size, 3);
  EXPECT_EQ(r0.master_port, r.master_port) << "every rank of a step derives the same port";
}

TEST(RankEnvSlurm, NextStepGetsAnotherPort) {
  Vars v = srun_task(0, 0, 0);
  int first = RankEnv::from_launcher(Environment(v)).master_port;
  v["SLURM_STEP_ID"] = "1";
  EXPECT_NE(RankEnv::from_launcher(Environment(v)).master_port, first);
  EXPECT_EQ(cohort::env::derived_master_port("slurm:4242.0"), first);
}

TEST(RankEnvSlurm, PmixRankIsPreferredOverSlurmProcid) {
  Vars v = srun_task(1, 0, 1);
  v["PMIX_RANK"] = "2";
  v["SLURM_LOCALID"] = "2";
  EXPECT_EQ(RankEnv::from_launcher(Environment(v)).rank, 2);
}

TEST(RankEnvSlurm, FallsBackToTheJobsVariablesWithoutStepOnes) {
  Vars v = {{"SLURM_JOB_ID", "7"},   {"SLURM_STEPID", "3"},  {"SLURM_PROCID", "1"},
            {"SLURM_LOCALID", "0"},  {"SLURM_NODEID", "1"},  {"SLURM_NTASKS", "2"},
            {"SLURM_JOB_NODELIST", "gpu[3-4]"}, {"SLURM_TASKS_PER_NODE", "1(x2)"}};
  RankEnv r = RankEnv::from_launcher(Environment(v));
  EXPECT_EQ(r.master_addr, "gpu3");
  EXPECT_EQ(r.node_rank, 1);
  EXPECT_EQ(r.local_world_size, 1);
  EXPECT_EQ(r.run_id, "slurm-7.3");
}

TEST(RankEnvPrecedence, OpenMpiWinsOverSlurmInsideAnAllocation) {
  // mpirun inside an sbatch job: every rank inherits SLURM_PROCID=0 from the batch step.
  Vars v = mpirun_rank(3);
  for (const auto& [k, val] : srun_task(0, 0, 0)) v[k] = val;
  RankEnv r = RankEnv::from_launcher(Environment(v));
  EXPECT_EQ(r.launcher, Launcher::open_mpi);
  EXPECT_EQ(r.rank, 3);
  EXPECT_EQ(r.local_rank, 3);
  EXPECT_EQ(r.world_size, 4);
  EXPECT_EQ(r.master_addr, "127.0.0.1");  // one node
  EXPECT_EQ(r.run_id, "ompi-284819457");
}

TEST(RankEnvOpenMpi, SingleNode) {
  RankEnv r = RankEnv::from_launcher(Environment(mpirun_rank(2)));
  EXPECT_EQ(r.rank, 2);
  EXPECT_EQ(r.node_rank, 0);
  EXPECT_EQ(r.num_nodes, 1);
  EXPECT_EQ(r.master_addr, "127.0.0.1");
  EXPECT_EQ(r.master_port, cohort::env::derived_master_port("ompi:284819457"));
}

TEST(RankEnvOpenMpi, SeveralNodesUseTheDaemonIndexAndMpirunsHost) {
  Vars v = mpirun_rank(5);
  v["OMPI_COMM_WORLD_SIZE"] = "8";
  v["OMPI_COMM_WORLD_LOCAL_RANK"] = "1";
  v["OMPI_MCA_orte_num_nodes"] = "2";
  v["OMPI_MCA_orte_hnp_uri"] = "284819456.0;tcp://10.1.0.1,192.168.5.1:35273";
  v["OMPI_MCA_orte_local_daemon_uri"] = "284819456.1;tcp://10.1.0.2:4000";
  RankEnv r = RankEnv::from_launcher(Environment(v));
  EXPECT_EQ(r.node_rank, 1);
  EXPECT_EQ(r.num_nodes, 2);
  EXPECT_EQ(r.master_addr, "10.1.0.1");
  v["SLURM_JOB_NODELIST"] = "cn[07-08]";  // inside an allocation: its first node
  EXPECT_EQ(RankEnv::from_launcher(Environment(v)).master_addr, "cn07");
  v["OMPI_MCA_orte_local_daemon_uri"] = "284819456.2;tcp://10.1.0.3:4000";
  EXPECT_NE(error_of(v).find("mpirun's own node runs no ranks"), std::string::npos) << error_of(v);
}

TEST(RankEnvOverrides, FlagThenEnvironmentThenDerived) {
  Vars v = srun_task(0, 0, 0);
  v["MASTER_PORT"] = "23456";
  v["MASTER_ADDR"] = "node01-ib";
  RankEnv r = RankEnv::from_launcher(Environment(v));
  EXPECT_EQ(r.master_port, 23456);
  EXPECT_EQ(r.master_addr, "node01-ib");
  r = RankEnv::from_launcher(Environment(v), LaunchOverrides{std::string("10.0.0.9"), 29500});
  EXPECT_EQ(r.master_port, 29500);
  EXPECT_EQ(r.master_addr, "10.0.0.9");
  v["MASTER_PORT"] = "70000";
  EXPECT_NE(error_of(v).find("MASTER_PORT='70000'"), std::string::npos);
}

TEST(RankEnvPassThrough, CohortVariables) {
  Vars v = mpirun_rank(0);
  v["COHORT_RUN_ID"] = "job-17";
  v["COHORT_RESTART_COUNT"] = "2";
  v["COHORT_CHECKPOINT_DIR"] = "/scratch/ckpt";
  v["COHORT_DAEMON"] = "node01:7070";
  RankEnv r = RankEnv::from_launcher(Environment(v));
  EXPECT_EQ(r.run_id, "job-17");
  EXPECT_EQ(r.restart_count, 2);
  EXPECT_EQ(r.checkpoint_dir.value_or(""), "/scratch/ckpt");
  EXPECT_EQ(r.daemon.value_or(""), "node01:7070");
  v["COHORT_RESTART_COUNT"] = "-1";
  EXPECT_NE(error_of(v).find("COHORT_RESTART_COUNT='-1'"), std::string::npos);
}

TEST(RankEnvErrors, NoLauncher) {
  std::string msg = error_of({{"HOME", "/root"}});
  EXPECT_NE(msg.find("no launcher found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--nproc-per-node"), std::string::npos) << msg;
  EXPECT_FALSE(cohort::env::detect_launcher(Environment(Vars{{"HOME", "/"}})));
}

TEST(RankEnvErrors, AnSbatchShellIsNotAnSrunTask) {
  Vars v = srun_task(0, 0, 0);
  v.erase("SLURM_STEP_ID");
  EXPECT_FALSE(cohort::env::detect_launcher(Environment(v)));
  EXPECT_NE(error_of(v).find("sbatch/salloc shell"), std::string::npos) << error_of(v);
}

TEST(RankEnvErrors, RankNotBelowWorldSizeNamesTheVariables) {
  Vars v = srun_task(4, 1, 1);
  std::string msg = error_of(v);
  EXPECT_NE(msg.find("RANK 4 is not below WORLD_SIZE 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SLURM_PROCID=4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("SLURM_STEP_NUM_TASKS=4"), std::string::npos) << msg;

  Vars m = mpirun_rank(1);
  m["OMPI_COMM_WORLD_LOCAL_RANK"] = "4";
  msg = error_of(m);
  EXPECT_NE(msg.find("LOCAL_RANK 4 is not below LOCAL_WORLD_SIZE 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("OMPI_COMM_WORLD_LOCAL_RANK=4"), std::string::npos) << msg;
}

TEST(RankEnvErrors, InconsistentSlurmVariables) {
  Vars v = srun_task(0, 0, 0);
  v["SLURM_STEP_TASKS_PER_NODE"] = "2,1";  // 3 tasks, but 4 in the step
  EXPECT_NE(error_of(v).find("describes 2 nodes and 3 tasks"), std::string::npos) << error_of(v);
  v = srun_task(0, 0, 0);
  v["SLURM_STEP_NUM_NODES"] = "3";
  EXPECT_NE(error_of(v).find("SLURM_STEP_NUM_NODES=3"), std::string::npos) << error_of(v);
  v = srun_task(0, 0, 0);
  v["SLURM_STEP_NODELIST"] = "node[01-02";
  EXPECT_NE(error_of(v).find("'[' is never closed"), std::string::npos) << error_of(v);
  v = srun_task(0, 0, 0);
  v["SLURM_NODEID"] = "zero";
  EXPECT_NE(error_of(v).find("SLURM_NODEID='zero' is not an integer"), std::string::npos);
  v = srun_task(0, 0, 0);
  v.erase("SLURM_LOCALID");
  EXPECT_NE(error_of(v).find("SLURM_LOCALID is not set"), std::string::npos) << error_of(v);
}

TEST(RankEnvContract, RoundTripsThroughTheVariablesCohortRunSets) {
  Vars v = srun_task(3, 1, 0);
  v["COHORT_CHECKPOINT_DIR"] = "/ckpt";
  RankEnv launched = RankEnv::from_launcher(Environment(v));
  Vars contract;
  for (const auto& [name, value] : launched.contract_vars()) contract[name] = value;
  EXPECT_EQ(contract.at("GROUP_RANK"), contract.at("NODE_RANK"));
  RankEnv seen = RankEnv::from_contract(Environment(contract));
  EXPECT_EQ(seen.rank, 3);
  EXPECT_EQ(seen.local_rank, 0);
  EXPECT_EQ(seen.world_size, 4);
  EXPECT_EQ(seen.local_world_size, 1);
  EXPECT_EQ(seen.node_rank, 1);
  EXPECT_EQ(seen.num_nodes, 2);
  EXPECT_EQ(seen.master_addr, "node01");
  EXPECT_EQ(seen.master_port, launched.master_port);
  EXPECT_EQ(seen.run_id, "slurm-4242.0");
  EXPECT_EQ(seen.checkpoint_dir.value_or(""), "/ckpt");
}

TEST(RankEnvContract, MissingOrWrongContractVariables) {
  Vars c = {{"RANK", "0"},         {"WORLD_SIZE", "2"},         {"LOCAL_RANK", "0"},
            {"LOCAL_WORLD_SIZE", "2"}, {"GROUP_RANK", "0"},     {"MASTER_ADDR", "h"},
            {"MASTER_PORT", "29500"}};
  EXPECT_EQ(RankEnv::from_contract(Environment(c)).num_nodes, 1);
  Vars missing = c;
  missing.erase("MASTER_PORT");
  EXPECT_THROW(RankEnv::from_contract(Environment(missing)), EnvError);
  Vars wrong = c;
  wrong["RANK"] = "2";
  EXPECT_THROW(RankEnv::from_contract(Environment(wrong)), EnvError);
}
