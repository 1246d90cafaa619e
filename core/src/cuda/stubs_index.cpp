// index-ops-impl.h in a build without CUDA: never reached (no CUDA tensor can exist there).
#include "cohort/core/error.h"
#include "index-ops-impl.h"

namespace cohort::detail::cuda {

namespace {
[[noreturn]] void no_cuda(const char* op) {
  COHORT_THROW(DeviceError, op, ": this cohort was built without CUDA (-DCOHORT_WITH_CUDA=ON needs the toolkit)");
}
}  // namespace

bool index_select(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, bool) {
  no_cuda("index_select");
}
bool index_add(const Tensor&, const Tensor&, const Tensor&, int64_t, int64_t, int64_t, bool) { no_cuda("index_add"); }
bool gather(const Tensor&, const Tensor&, const Tensor&, int64_t, bool) { no_cuda("gather"); }
bool scatter_add(const Tensor&, const Tensor&, const Tensor&, int64_t, bool) { no_cuda("scatter_add"); }
void copy_into_slice(const Tensor&, const Tensor&, int64_t, int64_t) { no_cuda("cat"); }
void random_fill(const Tensor&, RandomKind, uint64_t, uint64_t, int64_t, uint64_t) { no_cuda("random"); }
void dropout(const Tensor&, const Tensor&, const Tensor&, double, double, uint64_t, uint64_t) { no_cuda("dropout"); }
void dropout_backward(const Tensor&, const Tensor&, const Tensor&, double) { no_cuda("dropout"); }

}  // namespace cohort::detail::cuda
