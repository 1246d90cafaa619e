// The iteration plan of an elementwise CUDA kernel (implementation-only header, no CUDA types, so
// .cpp and .cu files share it). Built on the host by the same coalescing as the CPU loops
// (loops-impl.h): size-1 dims dropped, dims every operand walks contiguously merged, so most
// kernels see one flat dim.
#pragma once

#include <array>
#include <cstdint>

#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

constexpr int kMaxPlanDims = 8;

template <int N>
struct ElementwisePlan {
  int ndim = 1;
  int64_t numel = 0;
  int64_t sizes[kMaxPlanDims] = {};       // innermost last
  int64_t strides[N][kMaxPlanDims] = {};  // per operand, in elements
  char* base[N] = {};                     // per operand, first element
  int elem_size[N] = {};                  // per operand, bytes
  bool flat = false;                      // one dim and every stride 0 or 1
};

// The plan for operands that all have `shape` (broadcast views allowed). A shape that does not
// coalesce to kMaxPlanDims dims or fewer is a ShapeError naming `op`.
template <int N>
ElementwisePlan<N> make_elementwise_plan(const Shape& shape, const std::array<const Tensor*, N>& ops, const char* op);

}  // namespace cohort::detail::cuda
