// Loss modules (and mse_loss, which the functional layer lacks).
#pragma once

#include "cohort/core/nn/module.h"
#include "cohort/core/ops/nn.h"

namespace cohort {

// mean((input - target)^2) (or sum / none); shapes must match exactly.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

// A loss takes (prediction, target) -> scalar.
class Loss : public Module {
 public:
  using Module::Module;
  virtual Tensor forward(const Tensor& input, const Tensor& target) = 0;
  Tensor operator()(const Tensor& input, const Tensor& target) { return forward(input, target); }
};

class CrossEntropyLoss : public Loss {
 public:
  explicit CrossEntropyLoss(CrossEntropyOptions options = {}) : Loss("CrossEntropyLoss"), options(options) {}
  Tensor forward(const Tensor& logits, const Tensor& target) override { return cross_entropy(logits, target, options); }
  using Loss::forward;
  CrossEntropyOptions options;
};

class MSELoss : public Loss {
 public:
  explicit MSELoss(Reduction reduction = Reduction::mean) : Loss("MSELoss"), reduction(reduction) {}
  Tensor forward(const Tensor& input, const Tensor& target) override { return mse_loss(input, target, reduction); }
  using Loss::forward;
  Reduction reduction;
};

}  // namespace cohort
