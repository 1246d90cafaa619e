#include "failure.h"

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

namespace cohort::run {

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);  // glibc >= 2.32: "KILL"
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

Outcome outcome_of(int wait_status) {
  Outcome o;
  if (WIFEXITED(wait_status)) {
    o.exit_code = WEXITSTATUS(wait_status);
    o.description = "exit status " + std::to_string(o.exit_code);
  } else if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    o.exit_code = 128 + sig;
    o.description = "killed by signal " + std::to_string(sig) + " (" + signal_name(sig) + ")";
    if (WCOREDUMP(wait_status)) o.description += ", core dumped";
  } else {
    o.exit_code = 1;
    o.description = "ended with wait status " + std::to_string(wait_status);
  }
  return o;
}

std::string failure_line(int rank, const std::string& host, const std::string& description) {
  return "cohort-run: rank " + std::to_string(rank) + " (host " + host + ") failed: " + description;
}

std::int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void write_failure_record(const std::string& run_dir, const FailureRecord& r) {
  std::string path = run_dir + "/failure." + std::to_string(r.rank);
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << r.time_ns << '\t' << r.rank << '\t' << r.host << '\t' << r.exit_code << '\t'
      << r.description << '\n';
  }
  std::rename(tmp.c_str(), path.c_str());
}

std::optional<FailureRecord> first_failure(const std::string& run_dir) {
  std::optional<FailureRecord> first;
  DIR* d = opendir(run_dir.c_str());
  if (!d) return first;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("failure.", 0) != 0 || name.size() < 5 ||
        name.compare(name.size() - 4, 4, ".tmp") == 0)
      continue;
    std::ifstream f(run_dir + "/" + name);
    std::string line;
    if (!std::getline(f, line)) continue;
    std::istringstream in(line);
    FailureRecord r;
    std::string field;
    try {
      std::getline(in, field, '\t');
      r.time_ns = std::stoll(field);
      std::getline(in, field, '\t');
      r.rank = std::stoi(field);
      std::getline(in, r.host, '\t');
      std::getline(in, field, '\t');
      r.exit_code = std::stoi(field);
      std::getline(in, r.description);
    } catch (const std::exception&) {
      continue;  // a record cut short cannot be the first failure's; skip it
    }
    if (!first || r.time_ns < first->time_ns ||
        (r.time_ns == first->time_ns && r.rank < first->rank))
      first = r;
  }
  closedir(d);
  return first;
}

}  // namespace cohort::run
