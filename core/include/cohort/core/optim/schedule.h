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

// Linear warm-up to lr over warmup_steps, then cosine decay to min_factor * lr at total_steps, held
// there after. For step s (0-based: the rate of the (s+1)-th update):
//   s < warmup:          (s + 1) / warmup
//   warmup <= s < total: min + (1 - min) * 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup)))
//   s >= total:          min
// Up to total this is torch's SequentialLR of LinearLR(start_factor=1/warmup, total_iters=warmup-1)
// and CosineAnnealingLR(T_max=total-warmup, eta_min=min*lr) (tests/parity compares them).
class WarmupCosineLR : public LRScheduler {
 public:
  WarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_factor = 0.0);
  double factor(int64_t step) const override;

 private:
  int64_t warmup_, total_;
  double min_factor_;
};

}  // namespace cohort
