#include "binding.h"

#include <dirent.h>
#include <sched.h>

#include <algorithm>
#include <fstream>
#include <string>

namespace cohort::run {

std::string cpu_list_string(const std::vector<int>& cpus) {
  std::string out;
  for (std::size_t i = 0; i < cpus.size();) {
    std::size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(cpus[i]);
    if (j > i) out += "-" + std::to_string(cpus[j]);
    i = j + 1;
  }
  return out;
}

Binding plan_binding(const BindingInputs& in) {
  Binding b;
  const int L = in.local_world_size, i = in.local_rank;
  const int n_gpus = static_cast<int>(in.gpu_ids.size());

  if (in.gpus_per_rank > 0 && n_gpus > 0) {
    if (in.gpus_bound_per_task) {
      b.summary = "GPUs " + in.gpu_source + " (given per task by Slurm)";
      return b;
    }
    const int g = in.gpus_per_rank;
    if (L * g > n_gpus)
      throw BindingError(
          "more local ranks than GPUs on host " + in.host + ": LOCAL_WORLD_SIZE " +
          std::to_string(L) + " x --gpus-per-rank " + std::to_string(g) + " needs " +
          std::to_string(L * g) + " GPUs, found " + std::to_string(n_gpus) + " (" + in.gpu_source +
          "). Start at most " + std::to_string(n_gpus / g) +
          " ranks per node (srun --ntasks-per-node, mpirun --npernode, --nproc-per-node), "
          "lower --gpus-per-rank, or pass --gpus-per-rank 0 to run on CPU cores.");
    std::string list;
    for (int k = i * g; k < (i + 1) * g; ++k) list += (list.empty() ? "" : ",") + in.gpu_ids[k];
    b.cuda_visible_devices = list;
    b.summary = "GPU " + list;
    return b;
  }

  const int n = static_cast<int>(in.cpus.size());
  if (!in.cpu_bind || n == 0) {
    b.summary = "no binding (--no-cpu-bind)";
    return b;
  }
  if (!in.cpus_bound_by.empty()) {
    b.threads = n;
    b.summary = "cores " + cpu_list_string(in.cpus) + " (bound by " + in.cpus_bound_by + ")";
    return b;
  }
  // Block split: local rank i gets cores [i*n/L, (i+1)*n/L) of the allowed list, so the blocks
  // are disjoint, cover every core, and differ in size by at most one. With more ranks than
  // cores every block would be empty for some ranks: share round-robin instead.
  if (L <= n) {
    for (int k = i * n / L; k < (i + 1) * n / L; ++k) b.cpus.push_back(in.cpus[k]);
  } else {
    b.cpus.push_back(in.cpus[i % n]);
    if (i == 0)
      b.note = std::to_string(L) + " ranks share the " + std::to_string(n) + " cores " +
               cpu_list_string(in.cpus) + " of host " + in.host +
               " round-robin (local rank i runs on the (i mod " + std::to_string(n) +
               ")-th); they will be slower than with a core each";
  }
  b.threads = static_cast<int>(b.cpus.size());
  b.summary = "cores " + cpu_list_string(b.cpus);
  return b;
}

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

std::vector<int> parse_cpu_list(const std::string& list) {
  std::vector<int> cpus;
  std::size_t start = 0;
  std::string text = list;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.empty()) return cpus;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string part = text.substr(start, end - start);
    std::size_t dash = part.find('-');
    try {
      int lo = std::stoi(part.substr(0, dash));
      int hi = dash == std::string::npos ? lo : std::stoi(part.substr(dash + 1));
      for (int c = lo; c <= hi; ++c) cpus.push_back(c);
    } catch (const std::exception&) {
      return {};
    }
    start = end + 1;
  }
  return cpus;
}

std::vector<int> node_cpus() {
  auto read_list = [](const std::string& path) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    return parse_cpu_list(line);
  };
  // /proc/self/cgroup: "3:cpuset:/slurm/uid_0/job_7" (v1) or "0::/slurm/job_7" (v2).
  std::ifstream cg("/proc/self/cgroup");
  std::string line;
  while (std::getline(cg, line)) {
    std::size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string controllers = line.substr(a + 1, b - a - 1), path = line.substr(b + 1);
    std::vector<int> cpus;
    if (controllers == "cpuset")
      cpus = read_list("/sys/fs/cgroup/cpuset" + path + "/cpuset.effective_cpus");
    else if (controllers.empty())
      cpus = read_list("/sys/fs/cgroup" + path + "/cpuset.cpus.effective");
    if (!cpus.empty()) return cpus;
  }
  std::vector<int> online = read_list("/sys/devices/system/cpu/online");
  return online.empty() ? allowed_cpus() : online;
}

std::vector<std::string> dev_nvidia_gpus(const std::string& dev_dir) {
  std::vector<int> ids;
  if (DIR* d = opendir(dev_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() <= 6 || name.compare(0, 6, "nvidia") != 0) continue;
      std::string num = name.substr(6);
      if (std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; }))
        ids.push_back(std::stoi(num));
    }
    closedir(d);
  }
  // CUDA numbers the devices it can see 0..count-1 whatever their minor numbers (a container may
  // expose only /dev/nvidia2), and CUDA_VISIBLE_DEVICES takes those indices.
  std::vector<std::string> out;
  for (std::size_t k = 0; k < ids.size(); ++k) out.push_back(std::to_string(k));
  return out;
}

}  // namespace cohort::run
