// Random numbers from a counter-based generator (Philox 4x32-10): element i of a draw depends only
// on (seed, offset + i), so a seed gives the same tensor whatever the thread count.
#pragma once

#include <cstdint>

namespace cohort {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  void manual_seed(uint64_t seed) { seed_ = seed; offset_ = 0; }
  uint64_t seed() const { return seed_; }
  // Reserves `n` counters for one draw and returns the first; the next draw starts after them.
  uint64_t advance(uint64_t n);
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The generator used when an op is not given one (seed it with manual_seed()).
Generator& default_generator();
void manual_seed(uint64_t seed);

namespace detail {
// Four independent 32-bit random words for counter `counter` under `seed` (Philox 4x32-10).
void philox(uint64_t seed, uint64_t counter, uint32_t out[4]);
// Uniform in [0, 1) from 32 random bits (24 bits of mantissa for float, 32 for double).
inline float uniform_float(uint32_t x) { return static_cast<float>(x >> 8) * (1.0f / 16777216.0f); }
inline double uniform_double(uint32_t x) { return static_cast<double>(x) * (1.0 / 4294967296.0); }
}  // namespace detail

}  // namespace cohort
