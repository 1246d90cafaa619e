// Communicator: collectives among a fixed set of ranks, on one backend.
//
//   // every rank of the group runs:
//   Tensor g = ...;                                  // (n,) f32 on the CPU
//   comm.all_reduce(g, {ReduceOp::avg})->wait();     // g is now the mean over ranks
//   Tensor all = Tensor::empty({comm.size() * n});
//   comm.all_gather(all, g)->wait();                 // rank r's g lands at all[r*n : (r+1)*n]
//
// Backends: `mpi` (host memory, a progress thread so collectives overlap with compute), `nccl`
// (device memory, its own stream) and `local` (ranks are threads of one process). Each rank issues
// the same collectives in the same order, from one thread; every collective gets the next sequence
// number (#1, #2, ...), which is how a timeout names where the ranks parted ways.
//
// Two forms of each operation: on Tensors (contiguous, on device(), kept alive until the operation
// finished) and on raw buffers (`count` elements of `dtype` in memory on device(); the caller keeps
// them alive until the operation finished: when wait() returns on host memory; on device memory
// once the stream that wait() ordered has passed it, e.g. after synchronize()). A tensor on
// another device is refused with a DeviceError saying which communicator takes it (the host
// backends never read device memory, NCCL never gets host memory). On a CUDA device the operation
// starts after the work already queued on the caller's current stream (cuda::current_stream), and
// wait() orders that stream after it (see work.h). Out-of-place and in-place are both allowed:
// in-place means output == input for all_reduce/broadcast, input == output + rank*count for
// all_gather and output == input + rank*count for reduce_scatter (the layouts NCCL uses).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/device.h"
#include "cohort/core/dtype.h"
#include "cohort/core/tensor.h"
#include "cohort/parallel/comm/errors.h"
#include "cohort/parallel/comm/types.h"
#include "cohort/parallel/comm/work.h"

namespace cohort::parallel {

class Communicator {
 public:
  virtual ~Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& name() const { return name_; }  // the process group's name, for messages
  virtual const char* backend() const = 0;             // "mpi", "nccl", "local"
  virtual Device device() const = 0;                   // where its buffers live
  // The backend and how it moves data, for logs and benchmark tables: "mpi (shared memory)".
  virtual std::string description() const { return backend(); }

  // ---- on tensors ----
  WorkPtr all_reduce(Tensor& tensor, const AllReduceOptions& options = {});
  WorkPtr broadcast(Tensor& tensor, const BroadcastOptions& options = {});
  // output: size() * input.numel() elements, rank r's input at [r*n, (r+1)*n).
  WorkPtr all_gather(Tensor& output, const Tensor& input, const AllGatherOptions& options = {});
  // input: size() * output.numel() elements; rank r receives the reduction of block r.
  WorkPtr reduce_scatter(Tensor& output, const Tensor& input, const ReduceScatterOptions& options = {});
  WorkPtr barrier(const BarrierOptions& options = {});
  WorkPtr send(const Tensor& tensor, int dst, const SendOptions& options = {});
  WorkPtr recv(Tensor& tensor, int src, const RecvOptions& options = {});

  // ---- on raw buffers ----
  WorkPtr all_reduce(const void* input, void* output, int64_t count, DType dtype,
                     const AllReduceOptions& options = {});
  // `input` is read on the root only; every rank (the root too) receives into `output`.
  WorkPtr broadcast(const void* input, void* output, int64_t count, DType dtype,
                    const BroadcastOptions& options = {});
  // `count` is per rank: input holds count elements, output size()*count.
  WorkPtr all_gather(const void* input, void* output, int64_t count, DType dtype,
                     const AllGatherOptions& options = {});
  // `count` is per rank: input holds size()*count elements, output count.
  WorkPtr reduce_scatter(const void* input, void* output, int64_t count, DType dtype,
                         const ReduceScatterOptions& options = {});
  WorkPtr send(const void* input, int64_t count, DType dtype, int dst, const SendOptions& options = {});
  WorkPtr recv(void* output, int64_t count, DType dtype, int src, const RecvOptions& options = {});

  // A communicator over a subset of the ranks, on the same backend. Collective over every rank
  // of this communicator: ranks passing the same color >= 0 form one new communicator, ordered by
  // (key, rank); a rank passing a negative color gets nullptr.
  std::shared_ptr<Communicator> split(int color, int key, const std::string& name);

  // Sequence number of the last collective issued by this rank (0 before the first).
  uint64_t last_seq() const { return seq_; }

 protected:
  Communicator(int rank, int size, std::string name);

  // Backends implement these; arguments are already validated and `seq` assigned.
  virtual WorkPtr do_all_reduce(const void* input, void* output, int64_t count, DType dtype,
                                const AllReduceOptions& options, uint64_t seq) = 0;
  virtual WorkPtr do_broadcast(const void* input, void* output, int64_t count, DType dtype,
                               const BroadcastOptions& options, uint64_t seq) = 0;
  virtual WorkPtr do_all_gather(const void* input, void* output, int64_t count, DType dtype,
                                const AllGatherOptions& options, uint64_t seq) = 0;
  virtual WorkPtr do_reduce_scatter(const void* input, void* output, int64_t count, DType dtype,
                                    const ReduceScatterOptions& options, uint64_t seq) = 0;
  virtual WorkPtr do_barrier(const BarrierOptions& options, uint64_t seq) = 0;
  virtual WorkPtr do_send(const void* input, int64_t count, DType dtype, int dst, const SendOptions& options,
                          uint64_t seq) = 0;
  virtual WorkPtr do_recv(void* output, int64_t count, DType dtype, int src, const RecvOptions& options,
                          uint64_t seq) = 0;
  virtual std::shared_ptr<Communicator> do_split(int color, int key, const std::string& name, uint64_t seq) = 0;

  // Throws DTypeError when this backend cannot reduce `dtype` with `op` (default: avg needs a
  // floating dtype; everything else works).
  virtual void check_reduction(Collective c, DType dtype, ReduceOp op) const;

 private:
  void check_buffer_args(Collective c, const void* input, const void* output, int64_t count) const;
  void check_tensor(Collective c, const char* what, const Tensor& t) const;
  void check_peer(Collective c, int peer) const;

  int rank_;
  int size_;
  std::string name_;
  uint64_t seq_ = 0;                     // collectives issued so far
  std::vector<uint64_t> sends_, recvs_;  // point-to-point operations issued, per peer
};

}  // namespace cohort::parallel
