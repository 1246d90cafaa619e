// The element-wise combine every host backend uses: out[i] = op(inputs[0][i], ..., inputs[n-1][i]),
// always in input order, so every rank (and the tests' reference) gets bit-identical results.
#pragma once

#include <cstdint>

#include "cohort/core/dtype.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel::detail {

// `out` must not alias inputs[1..n-1] (it may alias inputs[0]). avg divides the sum by `n`.
void reduce_into(void* out, const void* const* inputs, int n, int64_t count, DType dtype, ReduceOp op);

// data[i] = data[i] / divisor (a floating dtype), for backends whose library has no avg.
void divide_by(void* data, int64_t count, DType dtype, int divisor);

}  // namespace cohort::parallel::detail
