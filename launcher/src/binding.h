#pragma once
// Which GPUs or CPU cores a rank gets: one GPU set per local rank when there are GPUs, otherwise
// a disjoint block of the cores this process may use.

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cohort::run {

// More local ranks than GPUs, and the like: a usage error the user must fix (cohort-run exits 2).
class BindingError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BindingInputs {
  int local_rank = 0;
  int local_world_size = 1;
  std::string host;
  int gpus_per_rank = 1;
  std::vector<std::string> gpu_ids;  // the GPUs of this node (CUDA_VISIBLE_DEVICES entries)
  std::string gpu_source;            // where gpu_ids came from, for messages
  bool gpus_bound_per_task = false;  // srun --gpus-per-task: Slurm already split them
  bool cpu_bind = true;
  std::vector<int> cpus;             // the cores this process may use (its affinity mask)
  std::string cpus_bound_by;         // non-empty: the launcher already bound this process
};

struct Binding {
  std::optional<std::string> cuda_visible_devices;  // set for the program when present
  std::vector<int> cpus;  // the program's affinity; empty: leave it as inherited
  int threads = 0;        // OMP_NUM_THREADS unless the user set it; 0: leave it
  std::string note;       // said once per node (by local rank 0), e.g. that cores are shared
  std::string summary;    // "GPU 1" / "cores 2-3" for --verbose
};

// Pure: the plan for one rank. Throws BindingError when the node has too few GPUs.
Binding plan_binding(const BindingInputs& in);

// The cores this process may run on (sched_getaffinity), ascending.
std::vector<int> allowed_cpus();

// The cores of this node that this job may use: its cpuset cgroup's (v1 or v2), else the online
// CPUs. Used instead of allowed_cpus() when mpirun already narrowed each rank's affinity.
std::vector<int> node_cpus();

// "0-3,6" -> {0,1,2,3,6}; empty on a malformed list.
std::vector<int> parse_cpu_list(const std::string& list);

// The GPUs the driver exposes, counted without linking CUDA: one per /dev/nvidia<N> (not
// nvidiactl, nvidia-uvm), named by CUDA index "0", "1", ...
std::vector<std::string> dev_nvidia_gpus(const std::string& dev_dir = "/dev");

// "0-3,6" for {0,1,2,3,6}.
std::string cpu_list_string(const std::vector<int>& cpus);

}  // namespace cohort::run
