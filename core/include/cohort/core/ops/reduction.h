// Reductions over all elements or over chosen dims (negative dims count from the end).
#pragma once

#include <vector>

#include "cohort/core/tensor.h"

namespace cohort {

Tensor sum(const Tensor& x);                                                  // shape ()
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);

// Largest / smallest element (shape ()). Differentiable: the gradient goes to the first maximum.
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);

struct ValuesIndices {
  Tensor values;   // differentiable
  Tensor indices;  // i64, the first position of the extreme along `dim`
};
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);

}  // namespace cohort
