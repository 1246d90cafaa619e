// The benchmark harness: time two contenders alternately (A B A B ...) so that drifting clocks,
// thermal state or a noisy neighbour hit both alike, and report medians.
//
//   Pair p = run_pair([&] { cohort_op(); }, [&] { baseline(); }, {warmup, reps});
//   printf("%.1f %.1f\n", work / p.a, work / p.b);   // seconds -> rate
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace cohort::bench {

struct RunOptions {
  int warmup = 2;  // untimed calls of each contender first
  int reps = 10;   // timed calls of each
};

// Median seconds per call of each contender.
struct Pair {
  double a = 0, b = 0;
};

Pair run_pair(const std::function<void()>& a, const std::function<void()>& b, const RunOptions& options);
double median(std::vector<double> values);

// printf-style formatting into a std::string (for table cells).
std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// A plain text table: a header row, rows of cells, printed with right-aligned columns.
class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace cohort::bench
