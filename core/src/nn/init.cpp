#include "cohort/core/nn/init.h"

#include <cmath>

#include "cohort/core/autograd.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"

namespace cohort::init {

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  NoGradGuard no_grad;
  t.copy_(rand(t.shape(), t.dtype(), gen) * (high - low) + low);
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  NoGradGuard no_grad;
  t.copy_(randn(t.shape(), t.dtype(), gen) * std + mean);
}

void constant_(Tensor& t, double value) {
  NoGradGuard no_grad;
  t.fill_(value);
}

void zeros_(Tensor& t) { constant_(t, 0.0); }
void ones_(Tensor& t) { constant_(t, 1.0); }

int64_t fan_in(const Tensor& weight) {
  COHORT_CHECK(weight.dim() >= 2, ShapeError, "fan_in: needs a weight with at least 2 dims, got shape ",
               weight.shape_str());
  return weight.numel() / weight.size(0);
}

int64_t fan_out(const Tensor& weight) {
  COHORT_CHECK(weight.dim() >= 2, ShapeError, "fan_out: needs a weight with at least 2 dims, got shape ",
               weight.shape_str());
  return weight.numel() / weight.size(1);
}

void xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fan_in(t) + fan_out(t)));
  uniform_(t, -bound, bound, gen);
}

void kaiming_uniform_(Tensor& t, double a, Generator* gen) {
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan_in(t)));
  uniform_(t, -bound, bound, gen);
}

}  // namespace cohort::init
