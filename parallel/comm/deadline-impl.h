// Deadlines that saturate (a timeout of Milliseconds::max() means "never"), shared by the backends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "cohort/core/error.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel::detail {

using ::cohort::detail::str_cat;

using Clock = std::chrono::steady_clock;

inline Clock::time_point deadline_after(Milliseconds timeout, Clock::time_point from = Clock::now()) {
  const auto room = std::chrono::duration_cast<Milliseconds>(Clock::time_point::max() - from);
  return timeout >= room ? Clock::time_point::max() : from + timeout;
}

inline Milliseconds elapsed_since(Clock::time_point start) {
  return std::chrono::duration_cast<Milliseconds>(Clock::now() - start);
}

// cv.wait_until that treats time_point::max() as "no deadline" (some libraries overflow on it).
// Returns false when the deadline passed.
inline bool wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) {
    cv.wait(lock);
    return true;
  }
  return cv.wait_until(lock, deadline) == std::cv_status::no_timeout;
}

}  // namespace cohort::parallel::detail
