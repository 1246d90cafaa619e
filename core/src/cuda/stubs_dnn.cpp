// dnn-ops-impl.h in a build without CUDA: never reached (no CUDA tensor can exist there).
#include "cohort/core/error.h"
#include "dnn-ops-impl.h"

namespace cohort::detail::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  COHORT_THROW(DeviceError, op, ": this cohort was built without CUDA (-DCOHORT_WITH_CUDA=ON needs the toolkit)");
}
}  // namespace

bool conv_forward(const ConvGeometry&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("conv2d"); }
bool conv_backward_data(const ConvGeometry&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("conv2d"); }
bool conv_backward_weights(const ConvGeometry&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("conv2d"); }
void max_pool_forward(const PoolGeometry&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("max_pool2d"); }
void max_pool_backward(const PoolGeometry&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("max_pool2d"); }
void avg_pool_forward(const PoolGeometry&, const Tensor&, const Tensor&) { no_cuda("avg_pool2d"); }
void avg_pool_backward(const PoolGeometry&, const Tensor&, const Tensor&) { no_cuda("avg_pool2d"); }

}  // namespace cohort::detail::cuda
