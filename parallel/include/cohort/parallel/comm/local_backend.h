// The `local` backend: N ranks as N threads of one process, meeting in shared memory. For tests
// (gloo-style: a whole multi-rank job in one test binary) and for replicas on one host.
//
//   LocalWorld::run(4, [](ProcessGroup& group) {        // four threads, ranks 0..3
//     Tensor t = full({3}, group.rank());
//     group.all_reduce(t)->wait();                       // t == {6, 6, 6}
//   });
//
// Inputs are copied when a rank arrives, so a rank may reuse its buffers as soon as its own
// wait() returned. When a collective's timeout passes the whole world is aborted: every later
// operation on any of its communicators throws CommError quoting the report.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cohort/parallel/comm/process_group.h"

namespace cohort::parallel {

namespace detail {
struct LocalState;
}

class LocalWorld {
 public:
  explicit LocalWorld(int size, std::string name = "local");
  ~LocalWorld();

  int size() const { return size_; }
  // Rank `rank`'s communicator (CPU tensors). Build each rank's once and use it from one thread.
  std::shared_ptr<Communicator> communicator(int rank) const;
  ProcessGroup group(int rank) const;

  // Runs fn on `size` threads, thread r with rank r's group; joins them and rethrows the first
  // exception any of them threw.
  static void run(int size, const std::function<void(ProcessGroup&)>& fn, const std::string& name = "local");

 private:
  int size_;
  std::string name_;
  std::shared_ptr<detail::LocalState> state_;
};

}  // namespace cohort::parallel
