// Host side of the elementwise CUDA kernels: the coalesced plan, from the CPU loops' make_plan.
#include "plan-impl.h"

#include <cstdlib>
#include <string_view>

#include "../ops/loops-impl.h"

namespace cohort::detail::cuda {

template <int N>
ElementwisePlan<N> make_elementwise_plan(const Shape& shape, const std::array<const Tensor*, N>& ops, const char* op) {
  ElementwisePlan<N> plan;
  plan.numel = numel_of(shape);
  if (plan.numel == 0) return plan;
  const LoopPlan<N> p = make_plan<N>(shape, ops);
  const int nd = static_cast<int>(p.shape.size());
  COHORT_CHECK(nd <= kMaxPlanDims, ShapeError, op, ": on CUDA, operands of shape ", shape_str(shape), " walk ", nd,
               " non-mergeable dims, more than the ", kMaxPlanDims, " the kernels take; make them contiguous first");
  plan.ndim = nd;
  bool flat = nd == 1;
  for (int d = 0; d < nd; ++d) plan.sizes[d] = p.shape[d];
  for (int k = 0; k < N; ++k) {
    plan.base[k] = p.base[k];
    plan.elem_size[k] = static_cast<int>(p.elem_size[k]);
    for (int d = 0; d < nd; ++d) plan.strides[k][d] = p.strides[k][d];
    if (p.strides[k][nd - 1] != 0 && p.strides[k][nd - 1] != 1) flat = false;
  }
  plan.flat = flat;
  return plan;
}

bool vectorize_elementwise() {
  static const bool on = [] {
    const char* v = std::getenv("COHORT_CUDA_VECTORIZE");
    return v == nullptr || std::string_view(v) != "0";
  }();
  return on;
}

template ElementwisePlan<1> make_elementwise_plan<1>(const Shape&, const std::array<const Tensor*, 1>&, const char*);
template ElementwisePlan<2> make_elementwise_plan<2>(const Shape&, const std::array<const Tensor*, 2>&, const char*);
template ElementwisePlan<3> make_elementwise_plan<3>(const Shape&, const std::array<const Tensor*, 3>&, const char*);
template ElementwisePlan<4> make_elementwise_plan<4>(const Shape&, const std::array<const Tensor*, 4>&, const char*);

}  // namespace cohort::detail::cuda
