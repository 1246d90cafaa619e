// Whether a GPU is usable, asked through the CUDA runtime only (cudart): without a driver,
// cudaGetDeviceCount fails (error 35, "insufficient driver") and leaves the count alone.
#include <cuda_runtime_api.h>

#include "cohort/core/error.h"
#include "cohort/parallel/comm/nccl_backend.h"

namespace cohort::parallel {

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear it, so the next CUDA call does not report it again
    return 0;
  }
  return count;
}

std::string cuda_unavailable_reason() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return ::cohort::detail::str_cat("no usable GPU: cudaGetDeviceCount failed with ", cudaGetErrorName(err), " (",
                           cudaGetErrorString(err), ")");
  }
  return count == 0 ? "no usable GPU: the CUDA runtime found 0 devices" : "";
}

}  // namespace cohort::parallel
