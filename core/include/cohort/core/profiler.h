// Where a training step's time goes, per op.
//
//   Profiler::start();
//   ... train some steps ...
//   std::cout << Profiler::stop().table();
//
// While on (for the calling thread only), every differentiable op, every backward node, the
// optimizer step and waits for data mark the clock; the time since the previous mark is charged
// to the op that marks. Ops run one after another on the training thread, so that is the op's
// time (including its share of the thread pool's work). Off, a mark is one thread-local test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cohort {

struct OpTime {
  std::string name;  // "matmul", "matmul backward", "optimizer step", ...
  double seconds = 0;
  int64_t calls = 0;
};

struct ProfileReport {
  std::vector<OpTime> ops;  // most time first
  double total_seconds = 0;
  std::string table(size_t max_rows = 25) const;
};

class Profiler {
 public:
  static void start();
  static ProfileReport stop();
  static bool enabled();
};

namespace detail {
void profile_mark_slow(const char* name, const char* suffix);
bool& profiling_flag();
// Marks made while this is set (inside a backward node, which the engine marks as a whole; or
// inside an op that calls other ops) are ignored, so the time goes to the outer op.
int& profile_suppress_depth();
struct ProfileSuppress {
  ProfileSuppress() { ++profile_suppress_depth(); }
  ~ProfileSuppress() { --profile_suppress_depth(); }
};
// Charges the time since the last mark to `name` (+ `suffix`).
inline void profile_mark(const char* name, const char* suffix = "") {
  if (profiling_flag() && profile_suppress_depth() == 0) profile_mark_slow(name, suffix);
}
}  // namespace detail

}  // namespace cohort
