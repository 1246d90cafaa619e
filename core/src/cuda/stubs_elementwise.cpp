// elementwise-ops-impl.h and transfer-impl.h in a build without CUDA: never reached (no CUDA
// tensor can exist there).
#include "cohort/core/error.h"
#include "elementwise-ops-impl.h"
#include "transfer-impl.h"

namespace cohort::detail::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  COHORT_THROW(DeviceError, op, ": this cohort was built without CUDA (-DCOHORT_WITH_CUDA=ON needs the toolkit)");
}
}  // namespace

void unary(const Tensor&, const Tensor&, UnaryOp, double, double) { no_cuda("unary"); }
void unary_grad(const Tensor&, const Tensor&, const Tensor&, UnaryGradOp, double, double) { no_cuda("backward"); }
void binary(const Tensor&, const Tensor&, const Tensor&, BinaryOp, double) { no_cuda("binary"); }
void ternary_grad(const Tensor&, const Tensor&, const Tensor&, const Tensor&, TernaryGradOp) { no_cuda("backward"); }
void where(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("where"); }
void copy(const Tensor&, const Tensor&) { no_cuda("copy"); }
void fill(const Tensor&, double) { no_cuda("fill_"); }
void copy_across(const Tensor&, const Tensor&, bool) { no_cuda("to"); }

}  // namespace cohort::detail::cuda
