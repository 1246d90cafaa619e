#include "cohort/core/parallel_for.h"

namespace cohort {

void set_num_threads(int n) {
#if COHORT_WITH_OPENMP
  omp_set_num_threads(n > 0 ? n : 1);
#else
  (void)n;
#endif
}

int get_num_threads() {
#if COHORT_WITH_OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace cohort
