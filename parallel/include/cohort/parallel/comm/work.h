// Work: the handle a collective returns. The collective runs in the background (on the
// communicator's progress thread, or on the device stream); wait() orders what comes after it.
//
//   WorkPtr w = comm.all_reduce(bucket);   // starts it
//   ...                                    // compute goes on meanwhile
//   w->wait();                             // bucket now holds the sum over all ranks
//
// On host memory (mpi, local) wait() blocks until the collective finished. On device memory (nccl)
// it does not block the host: it makes the calling thread's current stream of the device wait for
// the collective's end (an event), so every kernel queued after wait() sees the result, as PyTorch's
// Work::wait does for NCCL. Reading the values on the host (item(), to(Device::cpu())) waits for
// that stream. synchronize() blocks the host in both cases.
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

  // Host memory: blocks until the operation finished, then rethrows its error if it failed.
  // Device memory: makes the current stream wait for the operation (see above) and returns; it
  // throws if the operation already failed or its timeout has already passed (a watchdog enforces
  // the timeout meanwhile: see the nccl backend).
  // When the collective's own timeout passes, it fails with a TimeoutError naming the ranks that
  // never arrived, and its communicator is unusable afterwards. A shorter `timeout` here only bounds
  // this wait: it throws TimeoutError but leaves the operation running, so it can be waited on again.
  virtual void wait(Milliseconds timeout = kWaitForever) = 0;

  // Blocks the host until the operation finished on its device, then rethrows its error; `timeout`
  // as for wait(). On host memory it is wait().
  virtual void synchronize(Milliseconds timeout = kWaitForever) { wait(timeout); }

  Collective collective() const { return collective_; }
  // The collective's sequence number on its communicator (1, 2, ...); send/recv count per peer.
  uint64_t seq() const { return seq_; }
  std::string describe() const;  // "all_reduce #12"

  // Tensors the operation reads or writes, kept alive at least until the operation finished (until
  // this Work is destroyed on host backends; on the device, until the stream reached its end, even
  // when the Work is dropped before that).
  virtual void keep_alive(std::vector<Tensor> tensors) {
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
