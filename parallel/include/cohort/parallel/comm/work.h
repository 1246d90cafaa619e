// Work: the handle a collective returns. The collective runs in the background (on the
// communicator's progress thread, or on the device stream); wait() blocks until it finished and
// rethrows its error.
//
//   WorkPtr w = comm.all_reduce(bucket);   // starts it
//   ...                                    // compute goes on meanwhile
//   w->wait();                             // bucket now holds the sum over all ranks
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/tensor.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel {

// wait() with no argument waits as long as the collective's own timeout allows.
inline constexpr Milliseconds kWaitForever = Milliseconds::max();

class Work {
 public:
  virtual ~Work() = default;
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;

  // True once the operation has finished, successfully or not (wait() then returns or throws at
  // once). Never blocks.
  virtual bool is_completed() = 0;

  // Blocks until the operation finished, then rethrows its error if it failed. When the
  // collective's own timeout passes, it fails with a TimeoutError naming the ranks that never
  // arrived, and its communicator is unusable afterwards. A shorter `timeout` here only bounds this
  // wait: it throws TimeoutError but leaves the operation running, so it can be waited on again.
  virtual void wait(Milliseconds timeout = kWaitForever) = 0;

  Collective collective() const { return collective_; }
  // The collective's sequence number on its communicator (1, 2, ...); send/recv count per peer.
  uint64_t seq() const { return seq_; }
  std::string describe() const;  // "all_reduce #12"

  // Tensors the operation reads or writes, kept alive until the Work is destroyed.
  void keep_alive(std::vector<Tensor> tensors) {
    tensors_ = std::make_unique<std::vector<Tensor>>(std::move(tensors));
  }

 protected:
  Work(Collective collective, uint64_t seq) : collective_(collective), seq_(seq) {}

 private:
  Collective collective_;
  uint64_t seq_;
  std::unique_ptr<std::vector<Tensor>> tensors_;  // only the tensor API pays for it
};

using WorkPtr = std::shared_ptr<Work>;

}  // namespace cohort::parallel
