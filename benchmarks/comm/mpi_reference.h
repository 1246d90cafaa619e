// Plain MPI for cohort-bench: the baseline calls of --compare-mpi (MPI_Allreduce, ...) and the
// harness's own bookkeeping (barriers, averaging times over ranks), on duplicates of
// MPI_COMM_WORLD of their own. The benchmark is the one place outside parallel/comm/mpi/ that calls
// MPI directly: it has to, to measure what a program gets from MPI without cohort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/dtype.h"
#include "cohort/parallel/comm/types.h"
#include "control.h"

namespace cohort::bench {

// In a build without MPI (mpi_reference_stub.cpp) constructing one throws; the rest is never reached.
class MpiReference : public Control {
 public:
  MpiReference();  // needs MPI initialized (MpiSession)
  ~MpiReference() override;
  MpiReference(const MpiReference&) = delete;
  MpiReference& operator=(const MpiReference&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() const override;
  double average(double value) const override;
  int64_t sum(int64_t value) const override;
  std::vector<std::string> gather_to_root(const std::string& line) const override;  // rank order, on rank 0 only
  std::string hostname() const override;
  [[noreturn]] void abort(int code) const;  // MPI_Abort: a rank failed alone, the others must not hang

  // Whether MPI reduces `dtype` with `op` by itself (it has no 16-bit floats and no avg).
  static bool supports(DType dtype, parallel::ReduceOp op);

  // The baselines. `send == nullptr` means in place, with `recv` the start of the receive buffer.
  void all_reduce(const void* send, void* recv, size_t count, DType dtype, parallel::ReduceOp op) const;
  void all_gather(const void* send, void* recv, size_t count, DType dtype) const;
  void reduce_scatter(const void* send, void* recv, size_t count, DType dtype, parallel::ReduceOp op) const;
  void broadcast(const void* send, void* recv, size_t count, DType dtype, int root) const;

 private:
  struct Comms;
  Comms* comms_;
  int rank_ = 0, size_ = 1;
};

}  // namespace cohort::bench
