// Host-side plumbing for the CUDA backend (implementation-only header; compiled only in builds with
// CUDA): the error check, the current device and stream, and launch sizes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "cohort/core/cuda.h"
#include "cohort/core/error.h"
#include "cohort/core/tensor.h"

// COHORT_CUDA_CHECK(cudaMemcpy(...)): throws DeviceError with the CUDA error's name and text, the
// call that failed and this file:line.
#define COHORT_CUDA_CHECK(expr)                                                  \
  do {                                                                           \
    const cudaError_t cohort_cuda_err_ = (expr);                                 \
    if (cohort_cuda_err_ != cudaSuccess) {                                       \
      ::cohort::detail::cuda_fail(cohort_cuda_err_, #expr, __FILE__, __LINE__); \
    }                                                                            \
  } while (0)

// After a kernel launch: a bad configuration shows up here, not at the next synchronisation.
#define COHORT_CUDA_CHECK_LAUNCH() COHORT_CUDA_CHECK(cudaGetLastError())

namespace cohort::detail {

[[noreturn]] void cuda_fail(cudaError_t err, const char* what, const char* file, int line);

// Makes `device` the calling thread's current CUDA device for the guard's lifetime; afterwards the
// previous device is current again if cohort had chosen it (set_device or an enclosing guard),
// otherwise `device` stays current (see runtime.cpp: no context on cuda:0 by accident).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  int saved_selected_ = -1;
};

// The device for a runtime call that needs a context but names no device (cudaHostAlloc, event
// waits): the calling thread's cohort-chosen device, else the last cuda::set_device of any thread,
// else -1 (none chosen). A data loader's worker thread would otherwise create a context on cuda:0.
int host_call_device();

// The current stream of `device` for the calling thread (cuda::current_stream as a cudaStream_t).
cudaStream_t current_cuda_stream(int device);
// The current stream of t's device; t must be a CUDA tensor.
inline cudaStream_t stream_of(const Tensor& t) { return current_cuda_stream(t.device().index); }

// Throws DeviceError unless every defined tensor is on `device` (a CUDA device).
void check_same_cuda_device(const char* op, const Device& device, std::initializer_list<const Tensor*> tensors);

// Blocks for a grid-stride loop over n items: enough to fill the GPU a few times over, no more.
int64_t grid_blocks(int64_t n, int threads_per_block);

// Whether cuBLAS may use TF32 for f32 products (cuda::set_allow_tf32).
bool tf32_allowed();

}  // namespace cohort::detail
