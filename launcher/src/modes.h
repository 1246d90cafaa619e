#pragma once
// cohort-run's two ways of running.
//
//  * rank mode: this process is one rank, started by srun or mpirun (or by the stand-alone
//    parent's mpirun). Map the launcher's variables to the contract, bind a GPU or cores, start
//    the program, pass its output on with "[RANK] " in front, forward signals, report a failure.
//  * stand-alone mode (--nproc-per-node N outside srun/mpirun): run
//    `mpirun -np N cohort-run --standalone-run-dir DIR <the same flags> PROGRAM ...`, and when a
//    rank fails print one line naming the rank that failed first (from DIR's failure records).

#include <stdexcept>
#include <string>

#include "cohort/env/environment.h"
#include "options.h"

namespace cohort::run {

// A flag combination or setup cohort-run cannot work with; main prints it and exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int run_rank(const Options& options, const env::Environment& env, const std::string& host);
int run_standalone(const Options& options, int argc, char** argv, const env::Environment& env,
                   const std::string& host);

// mkdir -p; throws UsageError naming the directory when it cannot be made.
void make_directories(const std::string& path);

}  // namespace cohort::run
