// The CPU thread pool (OpenMP's, shared with oneDNN) and a parallel loop over an index range.
#pragma once

#include <cstdint>
#include <functional>

#include "cohort/config.h"

#if COHORT_WITH_OPENMP
#include <omp.h>
#endif

namespace cohort {

void set_num_threads(int n);  // for cohort's ops and oneDNN alike
int get_num_threads();

// Calls fn(begin_i, end_i) on disjoint chunks covering [begin, end), in parallel when the range is
// at least `grain` long and more than one thread is set. Chunks are contiguous and the split depends
// only on the range and the thread count.
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, const F& fn) {
  if (end <= begin) return;
#if COHORT_WITH_OPENMP
  const int64_t n = end - begin;
  int threads = omp_get_max_threads();
  if (threads > 1 && n >= grain && !omp_in_parallel()) {
    int64_t max_chunks = grain > 0 ? (n + grain - 1) / grain : n;
    if (max_chunks < threads) threads = static_cast<int>(max_chunks);
#pragma omp parallel num_threads(threads)
    {
      const int64_t tid = omp_get_thread_num();
      const int64_t nt = omp_get_num_threads();
      const int64_t chunk = (n + nt - 1) / nt;
      const int64_t b = begin + tid * chunk;
      const int64_t e = b + chunk < end ? b + chunk : end;
      if (b < e) fn(b, e);
    }
    return;
  }
#endif
  fn(begin, end);
}

}  // namespace cohort
