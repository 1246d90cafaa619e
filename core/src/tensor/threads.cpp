#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "cohort/core/parallel_for.h"

namespace cohort {

namespace {

#if defined(__x86_64__) && defined(__GNUC__)
// cohort is compiled for COHORT_CPU_ARCH (x86-64-v3 by default); on a CPU without those
// instructions the first vector loop would die with SIGILL. This runs before any other static
// initialiser of the program (priority 101) and is itself compiled for the baseline x86-64, so it
// can still say what is missing. The features checked are the ones the compiler was allowed to use.
__attribute__((constructor(101), target("arch=x86-64"))) void check_cpu_features() {
  __builtin_cpu_init();
  const char* missing = nullptr;
#ifdef __AVX512F__
  if (!__builtin_cpu_supports("avx512f")) missing = "avx512f";
#endif
#ifdef __AVX2__
  if (missing == nullptr && !__builtin_cpu_supports("avx2")) missing = "avx2";
#endif
#ifdef __FMA__
  if (missing == nullptr && !__builtin_cpu_supports("fma")) missing = "fma";
#endif
#ifdef __BMI2__
  if (missing == nullptr && !__builtin_cpu_supports("bmi2")) missing = "bmi2";
#endif
  if (missing == nullptr) return;
  char message[512];
  std::snprintf(message, sizeof message,
                "cohort: this build of cohort was compiled for a CPU with %s (COHORT_CPU_ARCH, x86-64-v3 by "
                "default), and this CPU does not have it. Rebuild with -DCOHORT_CPU_ARCH=x86-64 (portable, "
                "slower) or -DCOHORT_CPU_ARCH=native on this machine.\n",
                missing);
  [[maybe_unused]] const ssize_t n = ::write(2, message, std::strlen(message));
  ::_exit(70);  // EX_SOFTWARE
}
#endif

}  // namespace

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
