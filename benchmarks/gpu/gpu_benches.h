// The comparisons cohort-bench-gpu runs (each prints one table).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gpu_harness.h"

namespace cohort::bench {

// Memory-bound ops against cudaMemcpy's device-to-device bandwidth.
void kernels_bench(int64_t mib, const GpuRunOptions& run);

// cohort's matmul against cublasGemmEx called directly on the same tensors.
struct GpuGemmShape {
  std::string name;
  int64_t m, k, n;
};
void matmul_bench(const std::vector<GpuGemmShape>& shapes, const GpuRunOptions& run);

// Causal attention: the fused (flash) kernels against the unfused path, bf16.
void attention_bench(const GpuRunOptions& run);

}  // namespace cohort::bench
