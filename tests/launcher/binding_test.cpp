// cohort-run's device plan: a GPU set per local rank, else disjoint core blocks, else round-robin
// sharing with a note; and what the environment says about devices (cohort::env::LauncherEnv).
#include "binding.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cohort/env/launcher_env.h"

using cohort::run::Binding;
using cohort::run::BindingError;
using cohort::run::BindingInputs;
using cohort::run::plan_binding;

namespace {

BindingInputs cpu_node(int local_rank, int local_world, std::vector<int> cpus) {
  BindingInputs in;
  in.local_rank = local_rank;
  in.local_world_size = local_world;
  in.host = "node7";
  in.cpus = std::move(cpus);
  return in;
}

}  // namespace

TEST(Binding, EachLocalRankGetsItsOwnGpus) {
  BindingInputs in = cpu_node(2, 4, {0, 1, 2, 3});
  in.gpu_ids = {"0", "1", "2", "3"};
  Binding b = plan_binding(in);
  EXPECT_EQ(b.cuda_visible_devices.value_or("-"), "2");
  EXPECT_TRUE(b.cpus.empty()) << "GPU mode leaves the cores alone";

  in.gpu_ids = {"GPU-a", "GPU-b", "GPU-c", "GPU-d", "GPU-e", "GPU-f", "GPU-g", "GPU-h"};
  in.gpus_per_rank = 2;
  EXPECT_EQ(plan_binding(in).cuda_visible_devices.value_or("-"), "GPU-e,GPU-f");
}

TEST(Binding, MoreLocalRanksThanGpusIsAnErrorThatSaysWhatToDo) {
  BindingInputs in = cpu_node(0, 4, {0, 1});
  in.gpu_ids = {"0", "1"};
  in.gpu_source = "2 /dev/nvidia<N> devices";
  try {
    plan_binding(in);
    FAIL() << "expected BindingError";
  } catch (const BindingError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("more local ranks than GPUs on host node7"), std::string::npos) << msg;
    EXPECT_NE(msg.find("needs 4 GPUs, found 2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("--gpus-per-rank 0"), std::string::npos) << msg;
  }
}

TEST(Binding, SlurmPerTaskGpusAreKept) {
  BindingInputs in = cpu_node(3, 4, {0});
  in.gpu_ids = {"3"};
  in.gpus_bound_per_task = true;
  EXPECT_FALSE(plan_binding(in).cuda_visible_devices.has_value());
}

TEST(Binding, WithoutGpusTheCoresAreSplitIntoDisjointBlocks) {
  std::vector<int> cpus = {0, 1, 2, 3, 4, 5, 6, 8, 9, 10};  // 10 cores, 7 missing
  std::set<int> seen;
  std::size_t total = 0;
  for (int r = 0; r < 4; ++r) {
    Binding b = plan_binding(cpu_node(r, 4, cpus));
    EXPECT_FALSE(b.cuda_visible_devices);
    EXPECT_TRUE(b.note.empty());
    EXPECT_GE(b.cpus.size(), 2u);
    EXPECT_LE(b.cpus.size(), 3u);
    EXPECT_EQ(b.threads, static_cast<int>(b.cpus.size()));
    for (int c : b.cpus) EXPECT_TRUE(seen.insert(c).second) << "core " << c << " given twice";
    total += b.cpus.size();
  }
  EXPECT_EQ(total, cpus.size()) << "every core is given to some rank";
}

TEST(Binding, MoreRanksThanCoresShareRoundRobinAndSaySoOnce) {
  std::vector<int> cpus = {4, 5};
  for (int r = 0; r < 5; ++r) {
    Binding b = plan_binding(cpu_node(r, 5, cpus));
    ASSERT_EQ(b.cpus.size(), 1u);
    EXPECT_EQ(b.cpus[0], cpus[r % 2]);
    EXPECT_EQ(b.threads, 1);
    EXPECT_EQ(b.note.empty(), r != 0) << "only local rank 0 says it";
  }
  EXPECT_NE(plan_binding(cpu_node(0, 5, cpus)).note.find("5 ranks share the 2 cores 4-5"),
            std::string::npos);
}

TEST(Binding, ZeroGpusPerRankMeansCores) {
  BindingInputs in = cpu_node(1, 2, {0, 1});
  in.gpu_ids = {"0", "1"};
  in.gpus_per_rank = 0;
  Binding b = plan_binding(in);
  EXPECT_FALSE(b.cuda_visible_devices);
  EXPECT_EQ(b.cpus, std::vector<int>({1}));
}

TEST(Binding, ALauncherBindingIsKeptAndNoBindMeansNothing) {
  BindingInputs in = cpu_node(1, 2, {1});
  in.cpus_bound_by = "Open MPI (OMPI_MCA_orte_bound_at_launch=1)";
  Binding b = plan_binding(in);
  EXPECT_TRUE(b.cpus.empty());
  EXPECT_EQ(b.threads, 1);
  in = cpu_node(1, 2, {0, 1});
  in.cpu_bind = false;
  b = plan_binding(in);
  EXPECT_TRUE(b.cpus.empty());
  EXPECT_EQ(b.threads, 0);
}

TEST(Binding, CpuListsParse) {
  EXPECT_EQ(cohort::run::parse_cpu_list("0-3,6\n"), std::vector<int>({0, 1, 2, 3, 6}));
  EXPECT_EQ(cohort::run::parse_cpu_list("5"), std::vector<int>({5}));
  EXPECT_TRUE(cohort::run::parse_cpu_list("x-1").empty());
  std::vector<int> node = cohort::run::node_cpus();
  std::vector<int> mine = cohort::run::allowed_cpus();
  for (int c : mine)
    EXPECT_NE(std::find(node.begin(), node.end(), c), node.end()) << "core " << c << " of ours";
}

TEST(Binding, CpuListString) {
  EXPECT_EQ(cohort::run::cpu_list_string({0, 1, 2, 3, 6, 8, 9}), "0-3,6,8-9");
  EXPECT_EQ(cohort::run::cpu_list_string({}), "");
}

TEST(Binding, DevNvidiaCountsGpuNodesOnly) {
  std::string dir = ::testing::TempDir() + "/fake_dev";
  std::string cmd = "rm -rf " + dir + " && mkdir -p " + dir;
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  for (const char* name : {"nvidia0", "nvidia3", "nvidiactl", "nvidia-uvm", "nvidia-modeset", "null"})
    std::ofstream(dir + "/" + name) << "";
  EXPECT_EQ(cohort::run::dev_nvidia_gpus(dir), std::vector<std::string>({"0", "1"}));
  EXPECT_TRUE(cohort::run::dev_nvidia_gpus(dir + "/missing").empty());
}

TEST(LauncherEnv, DevicesThreadsAndBindingFromTheEnvironment) {
  using cohort::env::Environment;
  using cohort::env::LauncherEnv;
  using Vars = std::map<std::string, std::string>;
  LauncherEnv none = LauncherEnv::from(Environment());
  EXPECT_FALSE(none.cuda_visible_devices);
  EXPECT_TRUE(none.cpus_bound_by.empty());
  EXPECT_EQ(none.tmpdir, "/tmp");

  LauncherEnv hidden = LauncherEnv::from(Environment(Vars{{"CUDA_VISIBLE_DEVICES", ""}}));
  ASSERT_TRUE(hidden.cuda_visible_devices);
  EXPECT_TRUE(hidden.cuda_visible_devices->empty()) << "empty means no GPU, on purpose";

  LauncherEnv some = LauncherEnv::from(Environment(Vars{{"CUDA_VISIBLE_DEVICES", "2,3"},
                                                    {"OMP_NUM_THREADS", "4"},
                                                    {"PATH", "/a:/b"},
                                                    {"OMPI_COMM_WORLD_RANK", "0"},
                                                    {"OMPI_MCA_orte_bound_at_launch", "1"}}));
  EXPECT_EQ(*some.cuda_visible_devices, std::vector<std::string>({"2", "3"}));
  EXPECT_EQ(some.omp_num_threads.value_or(""), "4");
  EXPECT_EQ(some.path, std::vector<std::string>({"/a", "/b"}));
  EXPECT_TRUE(some.cpus_bound_by.empty()) << "mpirun's default binding is not the user's choice";
  EXPECT_TRUE(some.cpus_bound_by_default);

  LauncherEnv asked = LauncherEnv::from(Environment(Vars{{"OMPI_COMM_WORLD_RANK", "0"},
                                                         {"OMPI_MCA_orte_bound_at_launch", "1"},
                                                         {"OMPI_MCA_hwloc_base_binding_policy", "core"}}));
  EXPECT_EQ(asked.cpus_bound_by, "mpirun --bind-to core");
  EXPECT_FALSE(asked.cpus_bound_by_default);

  LauncherEnv slurm = LauncherEnv::from(Environment(
      {{"SLURM_STEP_ID", "0"}, {"SLURM_CPU_BIND_TYPE", "mask_cpu:"}, {"SLURM_GPUS_PER_TASK", "1"}}));
  EXPECT_NE(slurm.cpus_bound_by.find("srun --cpu-bind"), std::string::npos);
  EXPECT_EQ(slurm.slurm_gpus_per_task.value_or(0), 1);
  EXPECT_TRUE(LauncherEnv::from(Environment(Vars{{"SLURM_STEP_ID", "0"},
                                             {"SLURM_CPU_BIND_TYPE", "none"}}))
                  .cpus_bound_by.empty());
}
