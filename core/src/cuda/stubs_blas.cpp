// blas-ops-impl.h in a build without CUDA: never reached (no CUDA tensor can exist there).
#include "blas-ops-impl.h"
#include "cohort/core/error.h"

namespace cohort::detail::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  COHORT_THROW(DeviceError, op, ": this cohort was built without CUDA (-DCOHORT_WITH_CUDA=ON needs the toolkit)");
}
}  // namespace

void matmul(const Tensor&, const Tensor&, const Tensor&, const Tensor&) { no_cuda("matmul"); }
bool blas_layout_ok(int64_t, int64_t, int64_t, int64_t) { return false; }
bool flash_attention_applies(const Tensor&, const Tensor&, const Tensor&) { return false; }
void flash_attention_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool, double) {
  no_cuda("scaled_dot_product_attention");
}
void flash_attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                              const Tensor&, const Tensor&, const Tensor&, bool, double) {
  no_cuda("scaled_dot_product_attention backward");
}
void attention_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, bool, double) {
  no_cuda("scaled_dot_product_attention");
}
void attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                        const Tensor&, const Tensor&, bool, double) {
  no_cuda("scaled_dot_product_attention backward");
}

}  // namespace cohort::detail::cuda
