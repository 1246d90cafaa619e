#include "cohort/core/optim/schedule.h"

#include <cmath>

namespace cohort {

void LRScheduler::apply() {
  const double f = factor(step_);
  for (ParamGroup& g : optimizer_.param_groups()) g.lr = g.initial_lr * f;
}

void LRScheduler::step() {
  ++step_;
  apply();
}

void LRScheduler::set_last_step(int64_t step) {
  step_ = step;
  apply();
}

StepLR::StepLR(Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  COHORT_CHECK(step_size > 0, ValueError, "StepLR: step_size must be positive, got ", step_size);
  set_last_step(0);
}

double StepLR::factor(int64_t step) const { return std::pow(gamma_, static_cast<double>(step / step_size_)); }

WarmupCosineLR::WarmupCosineLR(Optimizer& optimizer, int64_t warmup_steps, int64_t total_steps, double min_factor)
    : LRScheduler(optimizer), warmup_(warmup_steps), total_(total_steps), min_factor_(min_factor) {
  COHORT_CHECK(warmup_steps >= 0 && total_steps > warmup_steps, ValueError,
               "WarmupCosineLR: need 0 <= warmup_steps < total_steps, got ", warmup_steps, " and ", total_steps);
  set_last_step(0);
}

// Step s (0-based, the rate for the (s+1)-th update): (s+1)/warmup during warm-up, then a half
// cosine from 1 down to min_factor at total_steps, and min_factor after.
double WarmupCosineLR::factor(int64_t step) const {
  if (step < warmup_) return static_cast<double>(step + 1) / static_cast<double>(warmup_);
  if (step >= total_) return min_factor_;
  const double progress = static_cast<double>(step - warmup_) / static_cast<double>(total_ - warmup_);
  return min_factor_ + (1 - min_factor_) * 0.5 * (1 + std::cos(M_PI * progress));
}

}  // namespace cohort
