// The benchmark loop: sizes from -b to -e, out-of-place then in-place, timed over -n iterations
// after -w warm-ups, checked against the reference, and (with --compare-mpi) the plain MPI call
// timed in alternating blocks in the same run.
#pragma once

#include <functional>

#include "bench.h"
#include "buffers.h"
#include "control.h"

namespace cohort::bench {

struct BenchContext {
  const BenchOptions& options;
  const CollectiveDesc& desc;
  Communicator& comm;
  const Control& control;    // barriers and averages among the ranks
  const MpiReference* mpi;   // the --compare-mpi baselines (null without MPI)
  bool device_buffers = false;
  int device = 0;
  std::function<void(const Row&)> on_row;  // called on every rank after each size
};

Results run_benchmark(const BenchContext& ctx);

}  // namespace cohort::bench
