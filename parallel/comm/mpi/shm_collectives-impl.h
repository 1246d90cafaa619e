// Collectives through a ShmSegment (all ranks on one node). See shm_collectives.cpp for the
// pipeline; this is its interface.
#pragma once

#include <atomic>
#include <cstdint>

#include "cohort/core/dtype.h"
#include "cohort/parallel/comm/types.h"
#include "shm_segment-impl.h"

namespace cohort::parallel::detail {

// What a collective does while its peers are not there yet: back off (spin, then yield, then
// sleep), and throw when its deadline passes or a peer gave up.
class ShmWaiter {
 public:
  virtual ~ShmWaiter() = default;
  virtual void pause(uint64_t iteration) = 0;
};

class ShmCollectives {
 public:
  // All-reduces of at least `streaming_bytes` (0: none) write their output around the caches.
  ShmCollectives(ShmSegment& segment, int rank, size_t one_shot_bytes, size_t streaming_bytes);

  void all_reduce(const void* input, void* output, int64_t count, DType dtype, ReduceOp op, ShmWaiter& w);
  void broadcast(const void* input, void* output, int64_t count, DType dtype, int root, ShmWaiter& w);
  void all_gather(const void* input, void* output, int64_t count, DType dtype, ShmWaiter& w);
  void reduce_scatter(const void* input, void* output, int64_t count, DType dtype, ReduceOp op, ShmWaiter& w);
  void barrier(ShmWaiter& w);

 private:
  // The pipeline's synchronisation, in terms of the step number g (see the .cpp).
  void await_all(Counter RankCounters::*which, uint64_t target, ShmWaiter& w);
  void await_one(int rank, Counter RankCounters::*which, uint64_t target, ShmWaiter& w);
  void publish(Counter RankCounters::*which, uint64_t value);
  void acquire_stage(uint64_t g, ShmWaiter& w);
  void acquire_result(uint64_t g, ShmWaiter& w);
  void finish_step(uint64_t g);

  void all_reduce_one_shot(const char* in, char* out, int64_t count, DType dtype, ReduceOp op, ShmWaiter& w);
  void all_reduce_pipelined(const char* in, char* out, int64_t count, DType dtype, ReduceOp op, ShmWaiter& w);

  ShmSegment& seg_;
  int rank_;
  int size_;
  size_t one_shot_bytes_;
  size_t streaming_bytes_;
  uint64_t step_ = 0;  // pipeline steps taken so far; the same on every rank
};

}  // namespace cohort::parallel::detail
