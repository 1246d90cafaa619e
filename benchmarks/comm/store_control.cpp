// Control over a Store: every operation is a numbered round (the ranks call them in the same order),
// each rank writes its value under the round's key, and everybody reads what it needs once the
// round is complete. A benchmark run makes a few hundred rounds, so the keys are never deleted.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "control.h"

namespace cohort::bench {
namespace {

// Long enough for the slowest rank to finish a timed block of the largest size.
constexpr parallel::Milliseconds kRoundTimeout{10 * 60 * 1000};

class StoreControl : public Control {
 public:
  StoreControl(std::shared_ptr<parallel::Store> store, int rank, int size)
      : store_(std::move(store)), rank_(rank), size_(size) {}

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void barrier() const override {
    const std::string key = next("barrier");
    if (store_->add(key, 1) == size_) store_->set(key + "/all", "1");
    store_->wait({key + "/all"}, kRoundTimeout);
  }

  double average(double value) const override {
    double total = 0;
    for (const std::string& v : exchange("average", format(value))) total += std::strtod(v.c_str(), nullptr);
    return total / size_;
  }

  int64_t sum(int64_t value) const override {
    int64_t total = 0;
    for (const std::string& v : exchange("sum", std::to_string(value))) total += std::strtoll(v.c_str(), nullptr, 10);
    return total;
  }

  std::vector<std::string> gather_to_root(const std::string& line) const override {
    const std::string key = next("gather");
    store_->set(key + "/" + std::to_string(rank_), line);
    std::vector<std::string> lines;
    for (int r = 0; rank_ == 0 && r < size_; ++r) lines.push_back(store_->get(key + "/" + std::to_string(r), kRoundTimeout));
    return lines;
  }

  std::string hostname() const override {
    char name[256] = {0};
    gethostname(name, sizeof name - 1);
    return name;
  }

 private:
  std::string next(const char* what) const { return "cohort-bench/" + std::to_string(++round_) + "/" + what; }

  // Every rank's value of this round, in rank order.
  std::vector<std::string> exchange(const char* what, const std::string& mine) const {
    const std::string key = next(what);
    store_->set(key + "/" + std::to_string(rank_), mine);
    std::vector<std::string> all;
    for (int r = 0; r < size_; ++r) all.push_back(store_->get(key + "/" + std::to_string(r), kRoundTimeout));
    return all;
  }

  static std::string format(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
  }

  std::shared_ptr<parallel::Store> store_;
  int rank_, size_;
  mutable uint64_t round_ = 0;
};

}  // namespace

std::unique_ptr<Control> make_store_control(std::shared_ptr<parallel::Store> store, int rank, int size) {
  return std::make_unique<StoreControl>(std::move(store), rank, size);
}

}  // namespace cohort::bench
