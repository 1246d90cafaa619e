// What the example programs share: their common flags, synthetic data when no --data is given,
// timing, the device and mixed precision (--device, --amp), and the one-line JSON summary every
// example ends with.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

#include "cohort/core/core.h"
#include "cohort/parallel/parallel.h"

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
  // Distribution (see docs/data-parallel.md).
  std::string strategy = "none";  // none, ddp or mirrored
  int replicas = 0;               // mirrored: replicas in this process (0: one per usable core)
  double bucket_mb = 25;          // ddp: gradient bucket size in MiB
  bool no_overlap = false;        // ddp: reduce every bucket only after backward (for measurement)
  std::string save;               // rank 0 saves the final parameters here (cohort::save format)
  // Where to train: "cpu", or "cuda" (device LOCAL_RANK % number of GPUs).
  std::string device = "cpu";
  // Mixed precision on a GPU: "none", "bf16" (autocast) or "f16" (autocast and loss scaling).
  std::string amp = "none";
};

// Registers --data, --steps, --batch-size, --seed, --threads, --lr, --log-every, --device, --amp and
// the distribution flags.
void add_common_flags(CLI::App& app, CommonArgs& args);

// Applies --threads and --seed (the default generator) before anything else runs.
void setup(const CommonArgs& args);

// Shuffled (seeded by --seed), drop-last batches of --batch-size.
DataLoaderOptions loader_options(const CommonArgs& args);

// A fresh temporary directory for generated data (removed at exit by the caller if wanted).
std::string temp_dir(const std::string& name);

// L2 norm of all parameters, in f64 (computed on the CPU wherever the parameters are).
double param_norm(const Module& model);

// Peak resident memory of this process in MiB.
double peak_rss_mib();

// Times the steps after the warm-up, for a throughput figure; with `profile`, also profiles them
// per op and prints the table to stderr from finish(). On a GPU the clock starts and stops with
// the device idle (it waits for it at the end of the warm-up and in finish()), so queued work is
// neither missed nor counted twice.
class Throughput {
 public:
  explicit Throughput(int64_t warmup_steps, bool profile = false, Device device = Device::cpu())
      : warmup_(warmup_steps), profile_(profile), device_(device) {}
  void step_done(int64_t step, int64_t samples);
  double per_second() const;
  void finish();

 private:
  int64_t warmup_;
  bool profile_;
  Device device_;
  int64_t samples_ = 0;
  std::chrono::steady_clock::time_point start_;
  double seconds_ = 0;
};

// The distribution strategy the flags asked for, set up for this process: the process group
// (MPI when the build has it), the data shard of this rank, the model wrapper and the step.
//
// It also holds the device and mixed precision of --device and --amp: the model goes to the device
// in wrap(), batches in forward_backward() (the loader pins them on a GPU), and the step runs under
// autocast with f16 loss scaling as asked.
//
//   Strategy strategy(args, &argc, &argv);
//   auto loader = strategy.loader(dataset, loader_options(args));
//   std::shared_ptr<Module> model = strategy.wrap([&] { return make_model(); });
//   ... optimizer over model->named_parameters(); per step:
//   StepOutput out = strategy.forward_backward(batch, loss_fn);
//   strategy.optimizer_step(optimizer, /*max_norm=*/1.0);
class Strategy {
 public:
  Strategy(const CommonArgs& args, int* argc, char*** argv);
  ~Strategy();

  int rank() const { return group_.is_member() ? group_.rank() : 0; }
  int world() const { return group_.is_member() ? group_.size() : 1; }
  bool is_main() const { return rank() == 0; }
  // Examples per step in this process (the batch size, times the replicas for mirrored).
  int64_t process_batch(int64_t batch_size) const;

  // --device: the CPU, or cuda:(LOCAL_RANK % GPUs).
  Device device() const { return device_; }

  // A loader over this rank's share of the data (DistributedSampler when world() > 1), pinning its
  // batches when training on a GPU.
  std::unique_ptr<DataLoader> loader(std::shared_ptr<const Dataset> data, DataLoaderOptions options) const;
  // Builds the model (once per replica for mirrored), moves it to device(), and returns what the
  // optimizer should see.
  std::shared_ptr<Module> wrap(const std::function<std::shared_ptr<Module>()>& make_model);
  // The model without its wrapper (names as in a 1-rank run), for saving and printing.
  Module& inner();
  // The batch moved to device(), forward and loss (under autocast with --amp), backward (of the
  // scaled loss with --amp f16).
  StepOutput forward_backward(const Batch& batch, const LossFn& loss);
  // Clips the gradients to max_norm (when > 0) and steps, unscaling first and skipping a step whose
  // gradients overflowed with --amp f16.
  void optimizer_step(Optimizer& optimizer, double max_norm = 0);
  // For fit(): averaged metrics, rank 0 prints, mirrored's step, mixed precision.
  void configure(FitOptions& options, const LossFn& loss);
  double average(double value) const;  // over ranks
  // Marks the end of `step` (snapshots the communication wait at the end of the warm-up).
  void step_done(int64_t step, int64_t warmup_steps);
  // "\"strategy\": ..., \"world_size\": ..." (and ddp/mirrored details), "\"device\": ...,
  // \"amp\": ..." (and the peak GPU memory on a GPU) for the summary line.
  std::string summary_json() const;
  // Saves inner()'s parameters and buffers to args.save (rank 0; the others wait for it).
  void save_if_asked();
  // Prints "step N  loss L" (the mean over ranks, on rank 0) at step 1, every log_every and the last.
  void log_step(int64_t step, double loss);
  // After training: saves if asked, and rank 0 prints the summary line with the mean loss and
  // `rate_key` (e.g. "samples_per_second") set to the measured throughput.
  void finish(int64_t steps, double loss, const Throughput& throughput, const char* rate_key);

 private:
  CommonArgs args_;
  std::unique_ptr<parallel::MpiSession> mpi_;
  std::unique_ptr<parallel::LocalWorld> local_;
  parallel::ProcessGroup group_;
  std::shared_ptr<Module> inner_;
  std::shared_ptr<parallel::Ddp> ddp_;
  std::unique_ptr<parallel::Mirrored> mirrored_;
  Device device_ = Device::cpu();
  std::unique_ptr<GradScaler> scaler_;  // --amp f16
  MixedPrecision mixed_precision_;
  double wait_at_warmup_ = 0;
  int64_t steps_after_warmup_ = 0;
};

// Prints the final line: {"step": N, "loss": L, "param_norm": P, <extra>}.
void print_summary(int64_t step, double loss, double norm, const std::string& extra_json = "");

}  // namespace cohort::examples
