// The comparisons cohort-bench-core runs; each prints one table.
#pragma once

#include <cstdint>
#include <vector>

#include "harness.h"

namespace cohort::bench {

struct MatmulShape {
  int64_t m, k, n;  // (m, k) @ (k, n)
};

// cohort's matmul (f32) against oneDNN's matmul primitive created once and called directly, on
// the same inputs and thread count: GFLOP/s of both and their ratio (the goal is >= 0.95). Without
// oneDNN, cohort's own GEMM is measured alone.
void matmul_bench(const std::vector<MatmulShape>& shapes, const std::vector<int>& threads, const RunOptions& run);

// One product of a training step: op(a) (m, k) @ op(b) (k, n), 'T' for a transposed view.
struct GemmShape {
  const char* name;
  char trans_a, trans_b;
  int64_t m, k, n;
};

// The example models' products (forward, input and weight gradients).
std::vector<GemmShape> training_gemm_shapes();

// oneDNN's and OpenBLAS's sgemm called directly, and cohort's matmul (which picks one of them per
// shape), on one thread: GFLOP/s of each and cohort's time against the faster library.
void gemm_bench(const std::vector<GemmShape>& shapes, const RunOptions& run);

// cohort's add/mul into a new tensor and add_ in place on two `mib`-MiB f32 tensors, against a
// memcpy of the same size split over the same threads: GB/s counting bytes read + written, and the
// fraction of memcpy's.
void elementwise_bench(int64_t mib, const std::vector<int>& threads, const RunOptions& run);

}  // namespace cohort::bench
