// Learning-rate schedules: call step() once per optimizer step; each sets every group's lr to
// initial_lr * factor(step).
#pragma once

#include <cstdint>

#include "cohort/core/optim/optimizer.h"

namespace cohort {

class LRScheduler {
 public:
  explicit LRScheduler(Optimizer& optimizer) : optimizer_(optimizer) {}
  virtual ~LRScheduler() = default;
  void step();                       // advances one step and applies the new rate
  int64_t last_step() const { return step_; }
  void set_last_step(int64_t step);  // for resuming
  virtual double factor(int64_t step) const = 0;

 private:
  void apply();
  Optimizer& optimizer_;
  int64_t step_ = 0;
};

// lr * gamma^(step / step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(Optimizer& optimizer, int64_t step_size, double gamma = 0.1);
  double factor(int64_t step) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

// Linear warm-up from 0 to lr over warmup_steps, then cosine decay to min_factor * lr at total_steps.
class WarmupCosineLR : public LRScheduler {
 public:
  WarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_factor = 0.0);
  double factor(int64_t step) const override;

 private:
  int64_t warmup_, total_;
  double min_factor_;
};

}  // namespace cohort
