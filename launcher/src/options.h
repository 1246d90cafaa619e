#pragma once
// cohort-run's command line: flags first, then the program and its arguments.

#include <optional>
#include <string>
#include <vector>

namespace cohort::run {

struct Options {
  std::vector<std::string> program;  // the program and its arguments (everything after the flags)
  int nproc_per_node = 0;            // --nproc-per-node N: 0 means "started by srun/mpirun"
  int gpus_per_rank = 1;             // --gpus-per-rank G; 0: bind CPU cores instead
  std::optional<int> gpus;           // --gpus N: the GPU count, instead of detecting it
  bool cpu_bind = true;              // --no-cpu-bind clears it
  std::string log_dir;               // --log-dir DIR: rank_<N>.out/.err instead of prefixed output
  std::optional<std::string> master_addr;
  std::optional<int> master_port;
  std::string mpirun;                // --mpirun PATH (stand-alone mode)
  bool verbose = false;              // -v: each rank prints its contract and binding to stderr
  std::string standalone_dir;        // hidden: set by the stand-alone parent for its ranks
};

// What parse_options decided: run with these options, or exit now with `exit_code` (after --help,
// or a usage error, whose message has been printed).
struct ParsedCommandLine {
  Options options;
  std::optional<int> exit_code;
};

ParsedCommandLine parse_options(int argc, char** argv);

}  // namespace cohort::run
