#include "run_dir.h"

#include <dirent.h>

#include <cstdio>
#include <fstream>

namespace cohort::run {

void register_rank(const std::string& run_dir, int rank, pid_t pid) {
  std::string path = run_dir + "/rank." + std::to_string(rank) + ".pid";
  {
    std::ofstream f(path + ".tmp");
    f << pid << '\n';
  }
  std::rename((path + ".tmp").c_str(), path.c_str());  // whole or absent, never half-written
}

std::vector<pid_t> registered_ranks(const std::string& run_dir) {
  std::vector<pid_t> pids;
  DIR* d = opendir(run_dir.c_str());
  if (!d) return pids;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("rank.", 0) != 0 || name.size() < 9 ||
        name.compare(name.size() - 4, 4, ".pid") != 0)
      continue;
    std::ifstream f(run_dir + "/" + name);
    long pid = 0;
    if (f >> pid && pid > 0) pids.push_back(static_cast<pid_t>(pid));
  }
  closedir(d);
  return pids;
}

}  // namespace cohort::run
