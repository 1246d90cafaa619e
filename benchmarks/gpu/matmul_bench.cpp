// cohort's matmul against cuBLAS called directly (cublasGemmEx, the same dtypes and compute type:
// f32 without TF32, bf16 and f16 with f32 accumulation) on the same tensors, TFLOP/s and the ratio.
// The goal is cohort within 10% of cuBLAS: its matmul adds only a cached handle lookup and the
// output allocation (served by the caching allocator) around the same call.
#include <cublas_v2.h>

#include <cstdio>
#include <stdexcept>
#include <string>

#include "../core/harness.h"
#include "cohort/core/core.h"
#include "gpu_benches.h"
#include "gpu_harness.h"

namespace cohort::bench {

namespace {

cudaDataType_t cuda_type(DType dt) {
  switch (dt) {
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: return CUDA_R_32F;
  }
}

}  // namespace

void matmul_bench(const std::vector<GpuGemmShape>& shapes, const GpuRunOptions& run) {
  const Device dev = Device::cuda(0);
  const cuda::DeviceProperties props = cuda::device_properties(0);
  cublasHandle_t handle = nullptr;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    std::printf("# matmul: cublasCreate failed; skipped\n");
    return;
  }
  cublasSetStream(handle, static_cast<cudaStream_t>(cuda::current_stream(0).handle()));
  std::printf("# matmul on %s: cohort matmul(a, b) against cublasGemmEx on the same operands, row-major\n"
              "# (M, K) @ (K, N); f32 with TF32 off (CUBLAS_COMPUTE_32F), bf16/f16 with f32 accumulation,\n"
              "# cohort's math mode; TFLOP/s = 2MNK / time; medians of %d alternating runs.\n",
              props.name.c_str(), run.reps);
  Table table({"product", "dtype", "M", "K", "N", "cohort ms", "cohort TFLOP/s", "cuBLAS ms", "cuBLAS TFLOP/s",
               "cohort / cuBLAS"});
  Generator gen(0);
  for (const GpuGemmShape& s : shapes) {
    for (DType dt : {DType::f32, DType::bf16}) {
      NoGradGuard no_grad;
      const Tensor a = randn({s.m, s.k}, DType::f32, &gen).to(dt).to(dev);
      const Tensor b = randn({s.k, s.n}, DType::f32, &gen).to(dt).to(dev);
      Tensor c = Tensor::empty({s.m, s.n}, TensorOptions(dt).with_device(dev));
      // The math mode of cohort's handles (cuda/blas.cpp); TF32 is off through CUBLAS_COMPUTE_32F.
      // Pedantic math would pick slower kernels and flatter cohort.
      cublasSetMathMode(handle,
                        static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION));
      const float alpha = 1.0f, beta = 0.0f;
      auto direct = [&] {
        // Row-major C = A B is column-major C^T = B^T A^T: swap the operands.
        const cublasStatus_t st =
            cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(s.n), static_cast<int>(s.m),
                         static_cast<int>(s.k), &alpha, b.raw_data(), cuda_type(dt), static_cast<int>(s.n),
                         a.raw_data(), cuda_type(dt), static_cast<int>(s.k), &beta, c.raw_data(), cuda_type(dt),
                         static_cast<int>(s.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        // A failed call returns at once and would time as a very fast cuBLAS.
        if (st != CUBLAS_STATUS_SUCCESS) {
          throw std::runtime_error(std::string("matmul bench: cublasGemmEx failed with ") + cublasGetStatusName(st));
        }
      };
      auto ours = [&] { (void)matmul(a, b); };
      const GpuPair p = run_pair_gpu(ours, direct, run);
      const double flop = 2.0 * s.m * s.n * s.k;
      table.add({s.name, dtype_name(dt), format("%lld", (long long)s.m), format("%lld", (long long)s.k),
                 format("%lld", (long long)s.n), format("%.3f", p.a_ms), format("%.1f", flop / (p.a_ms * 1e-3) / 1e12),
                 format("%.3f", p.b_ms), format("%.1f", flop / (p.b_ms * 1e-3) / 1e12),
                 format("%.2f", p.b_ms / p.a_ms)});
    }
  }
  table.print();
  cublasDestroy(handle);
}

}  // namespace cohort::bench
