// Ddp: data-parallel training, PyTorch DistributedDataParallel's design on cohort's communicators.
//
//   ProcessGroup world = make_mpi_world_group();
//   auto ddp = std::make_shared<Ddp>(model, world);   // checks the ranks' models, broadcasts rank 0's
//   SGD opt(ddp->named_parameters(), {...});           // "module.fc1.weight", ...
//   for (...) {
//     opt.zero_grad();
//     cross_entropy(ddp->forward(x), y).backward();    // gradients averaged over ranks on return
//     opt.step();
//   }
//
// Each parameter's gradient is copied into a bucket by a hook the moment it is final. Buckets
// (about bucket_bytes each, a smaller first one) are filled in reverse parameter order, fixed at
// construction and identical on every rank; a bucket whose gradients are all in is all-reduced
// (averaged) at once, in bucket order, while backward goes on computing the next ones. When
// backward ends, Ddp waits for what is still in flight and points every parameter's .grad at its
// slice of the reduced bucket (no copy back).
//
// Gradient accumulation: backward passes under `auto guard = ddp->no_sync();` only accumulate
// locally; the next synchronised backward reduces the sum.
//
// On GPUs: one rank per GPU, the model moved to it before wrapping, a group with an nccl
// communicator (make_process_group({.backend = "nccl", ...})):
//
//   model->to(Device::cuda(local_rank));
//   auto ddp = std::make_shared<Ddp>(model, group);   // buckets on cuda:local_rank
//
// The hooks copy gradients into the buckets on the current stream, the all-reduces run on NCCL's
// stream as buckets fill, and backward returns once the current stream has been told to wait for
// them: the host never blocks on communication, the optimizer's kernels simply queue behind it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/nn/module.h"
#include "cohort/parallel/comm/process_group.h"

namespace cohort::parallel {

struct DdpOptions {
  size_t bucket_bytes = 25u << 20;       // cap of every bucket after the first
  size_t first_bucket_bytes = 1u << 20;  // the first bucket (the last layers' gradients): starts
                                         // communication early
  // false: nothing is reduced until backward has ended (for measuring what overlap buys).
  bool overlap = true;
  // Models that legitimately leave some parameters without a gradient in a step: their slots
  // count as zero, and a parameter no rank used keeps an undefined gradient. Costs one small
  // all-reduce per step. Off: a missing gradient is an error naming the parameters.
  bool find_unused_parameters = false;
  bool broadcast_buffers = true;  // rank 0's buffers (e.g. running statistics) before every forward
  Milliseconds timeout = kDefaultTimeout;
};

struct DdpStats {
  int64_t steps = 0;               // synchronised backward passes
  int64_t buckets = 0;             // buckets per step
  // Host time waiting for all-reduces after backward ended, all steps. On a GPU the host does not
  // wait (the stream does), so this stays near 0 there; time the steps with CUDA events instead.
  double wait_seconds = 0;
  double reduced_bytes = 0;        // bytes all-reduced, all steps
};

class Ddp : public Module {
 public:
  Ddp(std::shared_ptr<Module> module, ProcessGroup group, DdpOptions options = {});
  ~Ddp() override;

  Tensor forward(const Tensor& x) override;
  Module& module() { return *module_; }
  const ProcessGroup& group() const { return group_; }

  // While alive, backward passes accumulate gradients locally without communicating.
  class NoSync {
   public:
    explicit NoSync(Ddp& ddp);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    Ddp& ddp_;
    bool prev_;
  };
  NoSync no_sync() { return NoSync(*this); }

  const DdpStats& stats() const { return stats_; }
  // Bucket b's parameters by name, in the order their gradients are laid out (for tests and logs).
  std::vector<std::vector<std::string>> bucket_layout() const;

 private:
  struct Param;
  struct Bucket;
  struct State;

  void check_same_model();
  void broadcast_state();
  void build_buckets();
  void on_gradient(size_t index, Tensor& leaf);
  void launch_ready();
  void finish_backward();
  void reset_step();

  std::shared_ptr<Module> module_;
  ProcessGroup group_;
  DdpOptions options_;
  Device device_ = Device::cpu();  // where the model, hence the buckets, live
  std::unique_ptr<State> state_;
  bool sync_ = true;
  bool expect_backward_ = false;  // a forward in grad mode ran; its backward has not reduced yet
  DdpStats stats_;
};

}  // namespace cohort::parallel
