#include "gpu_harness.h"

#include <algorithm>
#include <vector>

#include "cohort/core/cuda.h"

namespace cohort::bench {

namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

double time_once(const std::function<void()>& f) {
  const cuda::Stream s = cuda::current_stream(0);
  cuda::Event start(true), stop(true);
  start.record(s);
  f();
  stop.record(s);
  stop.synchronize();
  return stop.elapsed_ms(start);
}

}  // namespace

GpuPair run_pair_gpu(const std::function<void()>& a, const std::function<void()>& b, const GpuRunOptions& options) {
  for (int i = 0; i < options.warmup; ++i) {
    a();
    b();
  }
  cuda::synchronize(0);
  std::vector<double> ta, tb;
  for (int i = 0; i < options.reps; ++i) {
    ta.push_back(time_once(a));
    tb.push_back(time_once(b));
  }
  return {median_of(ta), median_of(tb)};
}

}  // namespace cohort::bench
