// Timing on a GPU for cohort-bench-gpu: CUDA events around each call on the current stream, two
// contenders alternately (A B A B ...), medians. The same habit as the CPU harness
// (benchmarks/core/harness.h), with device time instead of wall time.
#pragma once

#include <functional>

namespace cohort::bench {

struct GpuRunOptions {
  int warmup = 3;
  int reps = 20;
};

// Median milliseconds per call of each contender, timed with CUDA events on cuda:0's current stream.
struct GpuPair {
  double a_ms = 0, b_ms = 0;
};

GpuPair run_pair_gpu(const std::function<void()>& a, const std::function<void()>& b, const GpuRunOptions& options);

}  // namespace cohort::bench
