#pragma once
// How a rank ended, in words and as an exit code, and the per-run failure records through which
// the stand-alone parent names the rank that failed first.
//
// A record is one file, <run dir>/failure.<rank>, written atomically (temporary name + rename) by
// the rank's cohort-run right after its program ended and before cohort-run itself exits, so it
// exists by the time mpirun notices the failure and stops the other ranks:
//   <CLOCK_REALTIME ns> TAB <rank> TAB <host> TAB <exit code> TAB <description> NEWLINE

#include <cstdint>
#include <optional>
#include <string>

namespace cohort::run {

struct Outcome {
  int exit_code = 0;        // the program's code, or 128 + signal
  std::string description;  // "exit status 1", "killed by signal 9 (SIGKILL)"
  bool failed() const { return exit_code != 0; }
};

// From a waitpid() status.
Outcome outcome_of(int wait_status);

// "SIGKILL" for 9; "signal 64" for what has no name.
std::string signal_name(int sig);

// The line cohort-run prints: "cohort-run: rank 3 (host node2) failed: exit status 1".
std::string failure_line(int rank, const std::string& host, const std::string& description);

struct FailureRecord {
  std::int64_t time_ns = 0;
  int rank = 0;
  std::string host;
  int exit_code = 0;
  std::string description;
};

void write_failure_record(const std::string& run_dir, const FailureRecord& record);
// The earliest record in run_dir (ties: the lower rank), or nullopt when no rank failed.
std::optional<FailureRecord> first_failure(const std::string& run_dir);

std::int64_t now_ns();

}  // namespace cohort::run
