// The device-parity harness (the ggml test-backend-ops way): every case runs an op on the CPU and
// on cuda:0 from the same inputs and compares the results, and, for differentiable ops, each
// input's gradient for the same upstream gradient, at a tolerance stated per dtype.
//
//   GPU_CASE(elementwise, gelu) {
//     for (DType dt : {DType::f32, DType::bf16})
//       ctx.parity("gelu", {ctx.randn({64, 33}, dt)}, [](const Tensors& in) { return Tensors{gelu(in[0])}; },
//                  tol_for(dt));
//   }
//
// The program (cohort_gpu_checks) runs every case, prints one line per comparison (case, what,
// dtype, max |cpu - gpu|, the bound, PASS/FAIL), then a summary with the device's name and the
// date, and exits 1 if anything failed, 77 (ctest: skipped) when there is no GPU. It needs no test
// framework, so it builds on a GPU machine that has only the CUDA toolkit and a compiler. Each case
// ends with a device synchronisation, so an asynchronous error is reported against the case that
// caused it; if the CUDA context is broken after a case (an illegal address is "sticky"), the run
// stops with exit 2. `--isolate` runs each case in its own process instead (a crash, a hang or a
// broken context stays with its case; scripts/gpu-check.sh uses this), `--list` names the cases.
//
// Comparison: a tensor pair passes when max |cpu - gpu| <= atol + rtol * max |cpu| (a norm-wise
// bound: the kernels sum in a different order than the CPU loops, so single elements near zero may
// differ by more than an element-wise rtol would allow).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cohort/core/core.h"

namespace cohort::gpu_check {

using Tensors = std::vector<Tensor>;

struct Tol {
  double rtol = 0, atol = 0;
};

// The default tolerance per dtype: f64 1e-10, f32 1e-5 (libm and summation order), f16 2e-3,
// bf16 1.6e-2 (one rounding of the result at 8 bits of mantissa, times two for the CPU's), integers
// and bool exact.
Tol tol_for(DType dt);

class Context {
 public:
  // Inputs made on the CPU from this context's generator (a fixed seed per case).
  Tensor randn(const Shape& shape, DType dt = DType::f32);
  Tensor rand(const Shape& shape, double lo, double hi, DType dt = DType::f32);
  Tensor randint(int64_t lo, int64_t hi, const Shape& shape, DType dt = DType::i64);
  Generator& generator() { return gen_; }

  // fn on `inputs` (CPU) and on their copies on cuda:0; compares every output. With backward,
  // floating inputs require grad, the scalar sum(out_k * w_k) (w_k fixed random weights) is
  // backpropagated on both devices, and every input's gradient is compared too.
  void parity(const std::string& what, const Tensors& inputs, const std::function<Tensors(const Tensors&)>& fn,
              Tol tol, bool backward = true);
  // Compares one CPU result with one CUDA result (which must be on a CUDA device).
  void expect_close(const std::string& what, const Tensor& cpu, const Tensor& gpu, Tol tol);
  // A plain condition.
  void expect_true(const std::string& what, bool ok, const std::string& detail = "");

  // For the runner.
  explicit Context(std::string case_name, uint64_t seed) : case_(std::move(case_name)), gen_(seed) {}
  int failures() const { return failures_; }
  int checks() const { return checks_; }

 private:
  void report(const std::string& what, const std::string& dtype, double err, double bound, bool ok,
              const std::string& detail);
  std::string case_;
  Generator gen_;
  int failures_ = 0, checks_ = 0;
};

using CaseFn = void (*)(Context&);
struct Registrar {
  Registrar(const char* family, const char* name, CaseFn fn);
};

}  // namespace cohort::gpu_check

// GPU_CASE(family, name) { ... ctx.parity(...) ... }: a case of the device-parity program.
#define GPU_CASE(family, name)                                                                        \
  static void gpu_case_##family##_##name(::cohort::gpu_check::Context& ctx);                         \
  static const ::cohort::gpu_check::Registrar gpu_registrar_##family##_##name(#family, #name,        \
                                                                              &gpu_case_##family##_##name); \
  static void gpu_case_##family##_##name(::cohort::gpu_check::Context& ctx)
