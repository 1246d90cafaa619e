// cohort-run: see `cohort-run --help` and docs/launching.md.
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <string>

#include "cohort/env/environment.h"
#include "cohort/env/rank_env.h"
#include "modes.h"
#include "options.h"

namespace {

std::string host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cohort;
  run::ParsedCommandLine parsed = run::parse_options(argc, argv);
  if (parsed.exit_code) return *parsed.exit_code;
  const run::Options& options = parsed.options;
  env::Environment environment = env::Environment::from_process();
  std::string host = host_name();
  try {
    // --nproc-per-node starts the ranks itself unless srun or mpirun already did (its own ranks
    // are started by mpirun, so they come back here in rank mode).
    auto launcher = env::detect_launcher(environment);
    bool started_by_launcher = launcher == env::Launcher::open_mpi ||
                               launcher == env::Launcher::slurm;
    if (options.nproc_per_node > 0 && !started_by_launcher && options.standalone_dir.empty())
      return run::run_standalone(options, argc, argv, environment, host);
    return run::run_rank(options, environment, host);
  } catch (const env::EnvError& e) {
    // The same message from every rank of a job: the host says which node's environment it was.
    std::fprintf(stderr, "cohort-run: error on host %s: %s\n", host.c_str(), e.what());
  } catch (const std::exception& e) {  // UsageError, BindingError, and the unexpected
    std::fprintf(stderr, "cohort-run: error: %s\n", e.what());
  }
  return 2;
}
