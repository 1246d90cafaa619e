#include "cohort/core/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_map>

namespace cohort {

namespace {
struct ThreadProfile {
  std::chrono::steady_clock::time_point start, last;
  std::unordered_map<std::string, OpTime> ops;
};
thread_local ThreadProfile profile;
}  // namespace

namespace detail {
bool& profiling_flag() {
  thread_local bool on = false;
  return on;
}

int& profile_suppress_depth() {
  thread_local int depth = 0;
  return depth;
}

void profile_mark_slow(const char* name, const char* suffix) {
  const auto now = std::chrono::steady_clock::now();
  std::string key(name);
  key += suffix;
  OpTime& t = profile.ops[key];
  t.seconds += std::chrono::duration<double>(now - profile.last).count();
  ++t.calls;
  profile.last = now;
}
}  // namespace detail

void Profiler::start() {
  profile.ops.clear();
  profile.start = profile.last = std::chrono::steady_clock::now();
  detail::profiling_flag() = true;
}

bool Profiler::enabled() { return detail::profiling_flag(); }

ProfileReport Profiler::stop() {
  detail::profile_mark_slow("(other)", "");
  detail::profiling_flag() = false;
  ProfileReport r;
  for (auto& [name, t] : profile.ops) {
    OpTime copy = t;
    copy.name = name;
    r.ops.push_back(copy);
    r.total_seconds += t.seconds;
  }
  std::sort(r.ops.begin(), r.ops.end(), [](const OpTime& a, const OpTime& b) { return a.seconds > b.seconds; });
  return r;
}

std::string ProfileReport::table(size_t max_rows) const {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof(line), "%-32s %10s %7s %9s %11s\n", "op", "total ms", "share", "calls", "us/call");
  out += line;
  for (size_t i = 0; i < ops.size() && i < max_rows; ++i) {
    const OpTime& t = ops[i];
    std::snprintf(line, sizeof(line), "%-32s %10.1f %6.1f%% %9lld %11.1f\n", t.name.c_str(), t.seconds * 1e3,
                  total_seconds > 0 ? 100.0 * t.seconds / total_seconds : 0.0, static_cast<long long>(t.calls),
                  t.calls > 0 ? t.seconds * 1e6 / static_cast<double>(t.calls) : 0.0);
    out += line;
  }
  std::snprintf(line, sizeof(line), "%-32s %10.1f\n", "total", total_seconds * 1e3);
  out += line;
  return out;
}

}  // namespace cohort
