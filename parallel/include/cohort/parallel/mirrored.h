// Mirrored: one process drives N replicas of a model (TensorFlow's MirroredStrategy). On a
// CPU-only machine each replica runs on its own thread; the batch is split across them, their
// gradients are summed into replica 0 (each replica's loss weighted by its share of the rows, so
// the sum is the gradient of the whole batch's mean loss) and, when a process group of several
// ranks is given, averaged across processes too. The optimizer steps replica 0 (`model()`);
// the next step copies its parameters to the other replicas before they run, so every replica
// computes with the same weights. Replicas live on the CPU (a model factory that puts them on a GPU
// is refused): on GPUs, data parallelism is one rank per GPU with Ddp over an nccl group.
//
//   Mirrored mirrored([&] { return make_model(); }, {.replicas = 2});
//   SGD opt(mirrored.model().named_parameters(), {...});
//   for (...) {
//     opt.zero_grad();
//     StepOutput out = mirrored.forward_backward(batch, cross_entropy_loss());
//     opt.step();
//   }
//   // or with fit(): options.forward_backward = mirrored.step_fn(loss); fit(mirrored.model(), ...)
#pragma once

#include <functional>
#include <memory>

#include "cohort/core/train/fit.h"
#include "cohort/parallel/comm/process_group.h"

namespace cohort::parallel {

struct MirroredOptions {
  int replicas = 0;             // 0: one per CPU core this process may run on
  int threads_per_replica = 1;  // CPU threads each replica's ops use
  Milliseconds timeout = kDefaultTimeout;  // for the all-reduce across processes
};

class Mirrored {
 public:
  using ModelFactory = std::function<std::shared_ptr<Module>()>;

  // Calls make_model() once per replica; replica 0's initial weights (rank 0's, when `group` has
  // several ranks) are copied to every other replica (and process).
  explicit Mirrored(const ModelFactory& make_model, MirroredOptions options = {}, ProcessGroup group = {});
  ~Mirrored();
  Mirrored(const Mirrored&) = delete;
  Mirrored& operator=(const Mirrored&) = delete;

  Module& model() { return *replicas_[0]; }  // the replica the optimizer updates
  std::shared_ptr<Module> model_ptr() { return replicas_[0]; }
  int replicas() const { return static_cast<int>(replicas_.size()); }

  // Splits batch.data and batch.target along dim 0 over the replicas, runs forward, loss and
  // backward of each on its thread, and leaves the combined gradient in model()'s parameters.
  // Returns the batch's mean loss and the replicas' outputs concatenated (detached).
  StepOutput forward_backward(const Batch& batch, const LossFn& loss);
  std::function<StepOutput(const Batch&)> step_fn(LossFn loss);

 private:
  struct Pool;
  void run_all(const std::function<void(int)>& task);
  void sum_into_primary(int replica_thread);
  void all_reduce_across_processes();

  MirroredOptions options_;
  ProcessGroup group_;
  std::vector<std::shared_ptr<Module>> replicas_;
  std::vector<std::vector<Tensor>> params_;  // params_[k][i]: replica k's i-th parameter
  std::vector<std::vector<Tensor>> buffers_;
  std::unique_ptr<Pool> pool_;
};

// The CPU cores this process may run on (its affinity mask), at least 1.
int usable_cores();

}  // namespace cohort::parallel
