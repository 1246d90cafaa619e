#include "cohort/core/nn/loss.h"

#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/reduction.h"

namespace cohort {

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  COHORT_CHECK(input.shape() == target.shape(), ShapeError, "mse_loss: input ", input.shape_str(),
               " and target ", target.shape_str(), " must have the same shape");
  Tensor d = input - target;
  Tensor sq = d * d;
  switch (reduction) {
    case Reduction::none: return sq;
    case Reduction::sum: return sum(sq);
    case Reduction::mean: return mean(sq);
  }
  return mean(sq);
}

}  // namespace cohort
