// Reductions as (outer, reduced, inner) loops (implementation-only header).
//
// A reduction over a set of dims first permutes the kept dims to the front and the reduced dims
// after them (no data moves), then, if that view is not contiguous, copies it. The data is then
// (outer, R, inner) with inner = 1, or, when the reduced dims were already one contiguous block
// in the middle of a contiguous tensor, (outer, R, inner) with inner > 1 and no copy at all
// (the bias gradient, sum over dim 0 of (N, C), is this case: outer 1, R = N, inner = C).
#pragma once

#include <algorithm>
#include <vector>

#include "cohort/core/tensor.h"

namespace cohort::detail {

struct ReducePlan {
  Tensor data;            // contiguous, laid out as (outer, R, inner)
  int64_t outer = 1, reduced = 1, inner = 1;
  Shape out_shape;        // result shape honouring keepdim
  Shape keep_shape;       // result shape with reduced dims kept as 1
  std::vector<bool> is_reduced;
};

// dims empty means all dims. Throws IndexError for a dim out of range and ValueError for a
// repeated dim; the op name goes into the message.
inline ReducePlan plan_reduction(const Tensor& x, std::vector<int64_t> dims, bool keepdim, const char* op) {
  const int64_t nd = x.dim();
  ReducePlan p;
  p.is_reduced.assign(nd, dims.empty());
  if (nd == 0) {  // a scalar: dim 0 or -1 names the scalar itself, and there is nothing to reduce
    for (int64_t d : dims) wrap_dim(d, nd, op);
    p.data = x.contiguous();
    return p;
  }
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, nd, op);
    COHORT_CHECK(!p.is_reduced[w] || dims.empty(), ValueError, op, ": dim ", w, " appears more than once");
    p.is_reduced[w] = true;
  }
  for (int64_t d = 0; d < nd; ++d) {
    p.keep_shape.push_back(p.is_reduced[d] ? 1 : x.shape()[d]);
    if (!p.is_reduced[d] || keepdim) p.out_shape.push_back(p.is_reduced[d] ? 1 : x.shape()[d]);
  }
  // A single block of reduced dims [lo, hi] inside a contiguous tensor: no copy.
  int64_t lo = -1, hi = -1;
  bool block = true;
  for (int64_t d = 0; d < nd; ++d) {
    if (!p.is_reduced[d]) continue;
    if (lo < 0) lo = d;
    else if (hi != d - 1) block = false;
    hi = d;
  }
  if (block && lo >= 0 && x.is_contiguous()) {
    for (int64_t d = 0; d < lo; ++d) p.outer *= x.shape()[d];
    for (int64_t d = lo; d <= hi; ++d) p.reduced *= x.shape()[d];
    for (int64_t d = hi + 1; d < nd; ++d) p.inner *= x.shape()[d];
    p.data = x;
    return p;
  }
  std::vector<int64_t> order;
  for (int64_t d = 0; d < nd; ++d)
    if (!p.is_reduced[d]) order.push_back(d);
  for (int64_t d = 0; d < nd; ++d)
    if (p.is_reduced[d]) {
      order.push_back(d);
      p.reduced *= x.shape()[d];
    }
  for (int64_t d = 0; d < nd; ++d)
    if (!p.is_reduced[d]) p.outer *= x.shape()[d];
  p.data = x.permute(order).contiguous();
  return p;
}

}  // namespace cohort::detail
