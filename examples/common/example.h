// What the example programs share: their common flags, synthetic data when no --data is given,
// timing, and the one-line JSON summary every example ends with.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

#include "cohort/core/core.h"

namespace cohort::examples {

struct CommonArgs {
  std::string data;         // a data file or directory; empty: generate a small synthetic set
  int64_t steps = 200;
  int64_t batch_size = 64;  // per rank
  uint64_t seed = 0;
  int threads = 1;
  double lr = 0.0;          // 0: the example's default
  int64_t log_every = 20;
  int64_t warmup_steps = 5;  // steps excluded from the throughput figure
  bool profile = false;      // print where the time went (per op) after training
};

// Registers --data, --steps, --batch-size, --seed, --threads, --lr, --log-every.
void add_common_flags(CLI::App& app, CommonArgs& args);

// Applies --threads and --seed (the default generator) before anything else runs.
void setup(const CommonArgs& args);

// Shuffled (seeded by --seed), drop-last batches of --batch-size.
DataLoaderOptions loader_options(const CommonArgs& args);

// A fresh temporary directory for generated data (removed at exit by the caller if wanted).
std::string temp_dir(const std::string& name);

// L2 norm of all parameters, in f64.
double param_norm(const Module& model);

// Peak resident memory of this process in MiB.
double peak_rss_mib();

// Times the steps after the warm-up, for a throughput figure; with `profile`, also profiles them
// per op and prints the table to stderr from finish().
class Throughput {
 public:
  explicit Throughput(int64_t warmup_steps, bool profile = false) : warmup_(warmup_steps), profile_(profile) {}
  void step_done(int64_t step, int64_t samples);
  double per_second() const;
  void finish();

 private:
  int64_t warmup_;
  bool profile_;
  int64_t samples_ = 0;
  std::chrono::steady_clock::time_point start_;
  double seconds_ = 0;
};

// Prints the final line: {"step": N, "loss": L, "param_norm": P, <extra>}.
void print_summary(int64_t step, double loss, double norm, const std::string& extra_json = "");

}  // namespace cohort::examples
