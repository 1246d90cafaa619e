// conv2d's CUDA entry points in a CUDA build without cuDNN (COHORT_WITH_CUDNN is 0): they throw a
// DeviceError saying how to get cuDNN. Pooling needs no cuDNN (pool.cu).
#include "cohort/config.h"

#if !COHORT_WITH_CUDNN

#include "cohort/core/error.h"
#include "dnn-ops-impl.h"

namespace cohort::detail::cuda {

namespace {
[[noreturn]] void no_cudnn(const char* op) {
  COHORT_THROW(DeviceError, op,
               " on a CUDA tensor needs cuDNN, and this cohort was built without it. Install cuDNN 9 for your "
               "CUDA version (e.g. apt install cudnn9-cuda-13, or pip install nvidia-cudnn-cu13), then reconfigure "
               "cohort (cmake finds it in the toolkit or the pip package; -DCOHORT_WITH_CUDNN=ON makes it required) "
               "and rebuild; or run the convolution on the CPU");
}
}  // namespace

bool conv_forward(const ConvGeometry&, const Tensor&, const Tensor&, const Tensor&) { no_cudnn("conv2d"); }
bool conv_backward_data(const ConvGeometry&, const Tensor&, const Tensor&, const Tensor&) {
  no_cudnn("conv2d backward");
}
bool conv_backward_weights(const ConvGeometry&, const Tensor&, const Tensor&, const Tensor&) {
  no_cudnn("conv2d backward");
}

}  // namespace cohort::detail::cuda

#endif  // !COHORT_WITH_CUDNN
