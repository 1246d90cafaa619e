// optim-ops-impl.h in a build without CUDA: never reached (no CUDA tensor can exist there).
#include "cohort/core/error.h"
#include "optim-ops-impl.h"

namespace cohort::detail::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  COHORT_THROW(DeviceError, op, ": this cohort was built without CUDA (-DCOHORT_WITH_CUDA=ON needs the toolkit)");
}
}  // namespace

void sgd_step(const std::vector<SgdTensors>&, double, double, double, double, bool) { no_cuda("SGD"); }
void adam_step(const std::vector<AdamTensors>&, double, double, double, double, double, bool) { no_cuda("Adam"); }
void sum_of_squares(const std::vector<Tensor>&, const Tensor&) { no_cuda("clip_grad_norm"); }
void scale_(const std::vector<Tensor>&, double) { no_cuda("clip_grad_norm"); }
void unscale_and_check_(const std::vector<Tensor>&, const Tensor&, float) { no_cuda("GradScaler.unscale_"); }

}  // namespace cohort::detail::cuda
