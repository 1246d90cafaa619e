#include "cohort/core/generator.h"

#include "philox-impl.h"

namespace cohort {

uint64_t Generator::advance(uint64_t n) {
  const uint64_t first = offset_;
  offset_ += n;
  return first;
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace detail {

void philox(uint64_t seed, uint64_t counter, uint32_t out[4]) { philox4x32_10(seed, counter, out); }

}  // namespace detail
}  // namespace cohort
