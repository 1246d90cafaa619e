// matmul f32: cohort against oneDNN called directly.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "benches.h"
#include "cohort/core/core.h"

#if COHORT_WITH_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace cohort::bench {

namespace {

#if COHORT_WITH_DNNL
// oneDNN's matmul with everything set up outside the timed call: the primitive, the memory
// objects and the output buffer. This is the ceiling cohort's matmul (which also allocates its
// result and looks its primitive up in a cache) should come close to.
class DirectMatmul {
 public:
  DirectMatmul(const Tensor& a, const Tensor& b) : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    using dnnl::memory;
    const int64_t m = a.size(0), k = a.size(1), n = b.size(1);
    const memory::desc a_md({m, k}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc b_md({k, n}, memory::data_type::f32, memory::format_tag::ab);
    const memory::desc c_md({m, n}, memory::data_type::f32, memory::format_tag::ab);
    c_ = Tensor::empty({m, n});
    primitive_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, b_md, c_md), engine_));
    args_ = {{DNNL_ARG_SRC, memory(a_md, engine_, a.data_ptr<float>())},
             {DNNL_ARG_WEIGHTS, memory(b_md, engine_, b.data_ptr<float>())},
             {DNNL_ARG_DST, memory(c_md, engine_, c_.data_ptr<float>())}};
  }
  void run() {
    primitive_.execute(stream_, args_);
    stream_.wait();
  }
  const Tensor& result() const { return c_; }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::primitive primitive_;
  std::unordered_map<int, dnnl::memory> args_;
  Tensor c_;
};

// The largest |x - y| between two results, relative to the largest |y|.
double relative_difference(const Tensor& x, const Tensor& y) {
  const float* px = x.data_ptr<float>();
  const float* py = y.data_ptr<float>();
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(px[i]) - py[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(py[i])));
  }
  return diff / (scale > 0 ? scale : 1.0);
}
#endif

}  // namespace

void matmul_bench(const std::vector<MatmulShape>& shapes, const std::vector<int>& threads, const RunOptions& run) {
#if COHORT_WITH_DNNL
  std::printf("# matmul f32: cohort matmul vs oneDNN matmul called directly (same inputs, same threads)\n");
  Table table({"threads", "M", "K", "N", "cohort ms", "cohort GFLOP/s", "oneDNN ms", "oneDNN GFLOP/s", "ratio"});
#else
  std::printf("# matmul f32: cohort's own GEMM (built without oneDNN: no oneDNN to compare with)\n");
  Table table({"threads", "M", "K", "N", "cohort ms", "cohort GFLOP/s"});
#endif
  Generator gen(0);
  for (const MatmulShape& s : shapes) {
    const Tensor a = randn({s.m, s.k}, {}, &gen), b = randn({s.k, s.n}, {}, &gen);
    const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.k) * static_cast<double>(s.n);
    for (int t : threads) {
      set_num_threads(t);
      std::vector<std::string> row = {format("%d", t), format("%lld", static_cast<long long>(s.m)),
                                      format("%lld", static_cast<long long>(s.k)),
                                      format("%lld", static_cast<long long>(s.n))};
      auto cohort_call = [&] { (void)matmul(a, b); };
#if COHORT_WITH_DNNL
      DirectMatmul direct(a, b);
      direct.run();
      const double diff = relative_difference(matmul(a, b), direct.result());
      if (diff > 1e-5) std::printf("# WARNING: cohort and oneDNN results differ by %.2g (relative)\n", diff);
      const Pair p = run_pair(
          cohort_call, [&] { direct.run(); }, run);
      row.insert(row.end(), {format("%.3f", p.a * 1e3), format("%.1f", flops / p.a * 1e-9), format("%.3f", p.b * 1e3),
                             format("%.1f", flops / p.b * 1e-9), format("%.3f", p.b / p.a)});
#else
      const Pair p = run_pair(
          cohort_call, [] {}, run);
      row.insert(row.end(), {format("%.3f", p.a * 1e3), format("%.1f", flops / p.a * 1e-9)});
#endif
      table.add(row);
    }
  }
  table.print();
}

}  // namespace cohort::bench
