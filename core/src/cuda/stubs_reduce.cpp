// reduce-ops-impl.h in a build without CUDA: never reached (no CUDA tensor can exist there).
#include "cohort/core/error.h"
#include "reduce-ops-impl.h"

namespace cohort::detail::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  COHORT_THROW(DeviceError, op, ": this cohort was built without CUDA (-DCOHORT_WITH_CUDA=ON needs the toolkit)");
}
}  // namespace

void sum(const Tensor&, const Tensor&, int64_t, int64_t, int64_t, double) { no_cuda("sum"); }
void extreme(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, bool is_max) {
  no_cuda(is_max ? "max" : "min");
}
void scatter_extreme_grad(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t) {
  no_cuda("backward");
}
void softmax(const Tensor&, const Tensor&, int64_t, int64_t, int64_t, bool log) {
  no_cuda(log ? "log_softmax" : "softmax");
}
void softmax_backward(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, bool log) {
  no_cuda(log ? "log_softmax" : "softmax");
}
void nll_loss(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t) { no_cuda("cross_entropy"); }
void cross_entropy_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, bool,
                            double) {
  no_cuda("cross_entropy");
}
void layer_norm(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, double) {
  no_cuda("layer_norm");
}
void layer_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                         const Tensor&, int64_t, int64_t) {
  no_cuda("layer_norm");
}

}  // namespace cohort::detail::cuda
