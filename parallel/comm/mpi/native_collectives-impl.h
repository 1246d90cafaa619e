// Collectives through MPI's own nonblocking collectives (MPI_Iallreduce, ...), for ranks that span
// nodes (or when asked for). The request is polled, not waited on, so the deadline is enforced and
// status queries from peers keep being answered meanwhile.
#pragma once

#include <mpi.h>

#include <functional>
#include <memory>
#include <vector>

#include "cohort/core/dtype.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel::detail {

// How a running request waits: `pause` backs off and throws at the deadline; `keep_alive` is held
// with a request abandoned after a timeout, so the buffers it may still write stay valid.
struct NativePoll {
  std::function<void(uint64_t iteration)> pause;
  std::vector<std::shared_ptr<void>> keep_alive;
};

// The MPI datatype that moves elements of `dtype` (16-bit floats as uint16: only user ops combine them).
MPI_Datatype mpi_datatype(DType dtype);

class NativeCollectives {
 public:
  NativeCollectives(MPI_Comm comm, int rank, int size);
  ~NativeCollectives();

  void all_reduce(const void* input, void* output, int64_t count, DType dtype, ReduceOp op, NativePoll& poll);
  void broadcast(const void* input, void* output, int64_t count, DType dtype, int root, NativePoll& poll);
  void all_gather(const void* input, void* output, int64_t count, DType dtype, NativePoll& poll);
  void reduce_scatter(const void* input, void* output, int64_t count, DType dtype, ReduceOp op, NativePoll& poll);
  void barrier(NativePoll& poll);

  // Tests the requests abandoned after a timeout; true when none is left. Executor thread only.
  bool reap_abandoned();

 private:
  void complete(MPI_Request& request, NativePoll& poll);
  MPI_Op op_for(DType dtype, ReduceOp op) const;

  MPI_Comm comm_;
  int rank_, size_;
  MPI_Op half_ops_[2][3];  // [bf16, f16][sum, max, min]: MPI has no 16-bit floats
  struct Abandoned {
    MPI_Request request;
    std::vector<std::shared_ptr<void>> keep_alive;
  };
  std::vector<Abandoned> abandoned_;
};

}  // namespace cohort::parallel::detail
