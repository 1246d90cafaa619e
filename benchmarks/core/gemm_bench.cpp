// The products of a training step: oneDNN and OpenBLAS called directly, next to cohort's matmul,
// which picks one of them per shape (gemm() in core/src/ops/gemm-impl.h).
#include <algorithm>
#include <cstdio>

#include "benches.h"
#include "cohort/core/core.h"

#if COHORT_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#if COHORT_WITH_BLAS
#include <cblas.h>
#endif

namespace cohort::bench {

namespace {

// a (m, k) and b (k, n) as the views a training step multiplies: 'T' is a transposed view of a
// row-major tensor (x.t() for a weight, g.t() for the gradient in dW = g^T x).
struct Operands {
  Tensor a, b;
};

Operands make_operands(const GemmShape& s, Generator& gen) {
  Tensor a = s.trans_a == 'T' ? randn({s.k, s.m}, {}, &gen).t() : randn({s.m, s.k}, {}, &gen);
  Tensor b = s.trans_b == 'T' ? randn({s.n, s.k}, {}, &gen).t() : randn({s.k, s.n}, {}, &gen);
  return {a, b};
}

}  // namespace

std::vector<GemmShape> training_gemm_shapes() {
  // (name, trans_a, trans_b, m, k, n): the example models' forward x W^T, input gradient g W and
  // weight gradient g^T x, at their default batch sizes (mlp 128 rows, gpt 16 x 64 = 1024 rows).
  return {
      {"mlp fc1 forward", 'N', 'T', 128, 784, 1024},   {"mlp fc2 forward", 'N', 'T', 128, 1024, 1024},
      {"mlp fc1 dW", 'T', 'N', 1024, 128, 784},        {"mlp fc2 dW", 'T', 'N', 1024, 128, 1024},
      {"mlp fc2 dx", 'N', 'N', 128, 1024, 1024},       {"gpt qkv forward", 'N', 'T', 1024, 128, 384},
      {"gpt fc forward", 'N', 'T', 1024, 128, 512},    {"gpt proj2 forward", 'N', 'T', 1024, 512, 128},
      {"gpt qkv dW", 'T', 'N', 384, 1024, 128},        {"gpt fc dW", 'T', 'N', 512, 1024, 128},
      {"gpt proj2 dW", 'T', 'N', 128, 1024, 512},      {"gpt fc dx", 'N', 'N', 1024, 512, 128},
      {"gpt proj2 dx", 'N', 'N', 1024, 128, 512},
  };
}

void gemm_bench(const std::vector<GemmShape>& shapes, const RunOptions& run) {
#if COHORT_WITH_DNNL && COHORT_WITH_BLAS
  std::printf(
      "# GEMM backends, f32, 1 thread: oneDNN (dnnl_sgemm) and OpenBLAS (cblas_sgemm) called directly on the\n"
      "# same tensors as cohort's matmul, which picks one per shape; GFLOP/s, and cohort / the faster one\n");
  Table table({"product", "op(a) op(b)", "M", "K", "N", "oneDNN", "OpenBLAS", "cohort", "cohort / best"});
  set_num_threads(1);
  Generator gen(0);
  for (const GemmShape& s : shapes) {
    const Operands o = make_operands(s, gen);
    Tensor c = Tensor::empty({s.m, s.n});
    const float* a = o.a.data_ptr<float>();
    const float* b = o.b.data_ptr<float>();
    float* cp = c.data_ptr<float>();
    const int m = static_cast<int>(s.m), n = static_cast<int>(s.n), k = static_cast<int>(s.k);
    const int lda = s.trans_a == 'T' ? m : k, ldb = s.trans_b == 'T' ? k : n;
    auto onednn = [&] { dnnl_sgemm(s.trans_a, s.trans_b, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, cp, n); };
    auto openblas = [&] {
      cblas_sgemm(CblasRowMajor, s.trans_a == 'T' ? CblasTrans : CblasNoTrans,
                  s.trans_b == 'T' ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, cp, n);
    };
    auto cohort_call = [&] { (void)matmul(o.a, o.b); };
    const Pair p1 = run_pair(onednn, openblas, run);
    const Pair p2 = run_pair(cohort_call, onednn, run);  // oneDNN twice: a check on the noise
    const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.k) * static_cast<double>(s.n);
    const double dnnl_s = std::min(p1.a, p2.b);
    table.add({s.name, format("%c%c", s.trans_a, s.trans_b), format("%lld", static_cast<long long>(s.m)),
               format("%lld", static_cast<long long>(s.k)), format("%lld", static_cast<long long>(s.n)),
               format("%.1f", flops / dnnl_s * 1e-9), format("%.1f", flops / p1.b * 1e-9),
               format("%.1f", flops / p2.a * 1e-9), format("%.2f", std::min(dnnl_s, p1.b) / p2.a)});
  }
  table.print();
#else
  (void)shapes;
  (void)run;
  std::printf("# GEMM backends: needs both oneDNN and OpenBLAS in the build; skipped\n");
#endif
}

}  // namespace cohort::bench
