// A progress bar for long work: "[=====>    ] 120/500  loss 0.3121  1234 samples/s  ETA 0:12" redrawn
// in place on a terminal; on a pipe or file, a plain line every `every` updates instead.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace cohort {

class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string label = "", std::FILE* out = stdout, int64_t every = 50);
  // done: units finished; extra: text after the counts (e.g. "loss 0.31"); rate: units/s.
  void update(int64_t done, const std::string& extra, double rate);
  void finish(const std::string& extra);
  bool is_terminal() const { return terminal_; }

 private:
  int64_t total_;
  std::string label_;
  std::FILE* out_;
  int64_t every_;
  bool terminal_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace cohort
