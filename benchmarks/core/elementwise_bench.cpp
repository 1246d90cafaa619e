// Large elementwise ops against memcpy bandwidth.
#include <cstdio>
#include <cstring>

#include "benches.h"
#include "cohort/core/core.h"

namespace cohort::bench {

namespace {

// memcpy split into one contiguous chunk per thread, like cohort's elementwise loops.
void parallel_memcpy(char* dst, const char* src, int64_t bytes) {
  parallel_for(0, bytes, 1 << 20,
               [&](int64_t begin, int64_t end) { std::memcpy(dst + begin, src + begin, end - begin); });
}

// One op to compare with memcpy: what it runs and how many bytes it reads and writes per element
// of f32 (in units of the tensor size).
struct ElementwiseCase {
  const char* name;
  int operands_moved;  // tensors read + tensors written
  std::function<void(Tensor& a, const Tensor& b)> run;
};

}  // namespace

void elementwise_bench(int64_t mib, const std::vector<int>& threads, const RunOptions& run) {
  const int64_t n = mib * (1 << 20) / 4;
  const double bytes = static_cast<double>(n) * 4;
  std::printf(
      "# elementwise f32, %lld MiB per tensor: GB/s counts bytes read + written (memcpy: 2x size; "
      "add/mul: 3x size; memset: 1x)\n",
      static_cast<long long>(mib));
  Generator gen(0);
  Tensor a = rand({n}, {}, &gen), b = rand({n}, {}, &gen);
  Tensor src = rand({n}, {}, &gen), dst = zeros({n});
  const std::vector<ElementwiseCase> cases = {
      {"add -> new tensor", 3, [](Tensor& x, const Tensor& y) { (void)add(x, y); }},
      {"mul -> new tensor", 3, [](Tensor& x, const Tensor& y) { (void)mul(x, y); }},
      {"add_ in place", 3, [](Tensor& x, const Tensor& y) { add_(x, y); }},
      // What "-> new tensor" pays on top of the arithmetic: a fresh result's pages are mapped and
      // zeroed by the kernel on first touch.
      {"new tensor + memset", 1,
       [](Tensor& x, const Tensor&) {
         Tensor t = Tensor::empty(x.shape());
         std::memset(t.raw_data(), 0, t.nbytes());
       }},
  };
  Table table({"threads", "op", "op ms", "op GB/s", "memcpy ms", "memcpy GB/s", "fraction"});
  for (int t : threads) {
    set_num_threads(t);
    for (const ElementwiseCase& c : cases) {
      const Pair p = run_pair(
          [&] { c.run(a, b); },
          [&] { parallel_memcpy(static_cast<char*>(dst.raw_data()), static_cast<const char*>(src.raw_data()), n * 4); },
          run);
      const double op_rate = c.operands_moved * bytes / p.a, copy_rate = 2 * bytes / p.b;
      table.add({format("%d", t), c.name, format("%.2f", p.a * 1e3), format("%.1f", op_rate * 1e-9),
                 format("%.2f", p.b * 1e3), format("%.1f", copy_rate * 1e-9), format("%.2f", op_rate / copy_rate)});
    }
  }
  table.print();
}

}  // namespace cohort::bench
