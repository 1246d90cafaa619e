// Host <-> device and device <-> device copies of contiguous tensors.
#include <cuda_runtime_api.h>

#include "allocator-impl.h"
#include "cuda-impl.h"
#include "transfer-impl.h"

namespace cohort::detail::cuda {

void copy_across(const Tensor& dst, const Tensor& src, bool non_blocking) {
  COHORT_CHECK(dst.dtype() == src.dtype() && dst.numel() == src.numel() && dst.is_contiguous() && src.is_contiguous(),
               ValueError, "copy between devices: internal: expected two contiguous ", dtype_name(src.dtype()),
               " tensors of ", src.numel(), " elements");
  const size_t bytes = src.nbytes();
  if (bytes == 0) return;
  const Device from = src.device(), to = dst.device();
  if (from.is_cuda() && to.is_cuda()) {
    // The destination's stream first waits for what the source's stream has queued (its writes of
    // src); on one device they are the same stream.
    cudaStream_t stream = current_cuda_stream(to.index);
    DeviceGuard guard(to.index);
    if (from.index != to.index) {
      cudaEvent_t ready = nullptr;
      {
        DeviceGuard src_guard(from.index);
        COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
        COHORT_CUDA_CHECK(cudaEventRecord(ready, current_cuda_stream(from.index)));
      }
      COHORT_CUDA_CHECK(cudaStreamWaitEvent(stream, ready, 0));
      COHORT_CUDA_CHECK(cudaMemcpyPeerAsync(dst.raw_data(), to.index, src.raw_data(), from.index, bytes, stream));
      cudaEventDestroy(ready);
      if (non_blocking) {
        // src's block goes back to its stream's free list when src dies, and is handed out again on
        // that stream at once: make that stream wait for the copy that still reads it. (An event
        // is recorded on a stream of its own device, so this one is made on the destination's.)
        cudaEvent_t copied = nullptr;
        COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
        COHORT_CUDA_CHECK(cudaEventRecord(copied, stream));
        {
          DeviceGuard src_guard(from.index);
          COHORT_CUDA_CHECK(cudaStreamWaitEvent(current_cuda_stream(from.index), copied, 0));
        }
        cudaEventDestroy(copied);
      }
    } else {
      COHORT_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), bytes, cudaMemcpyDeviceToDevice, stream));
    }
    if (!non_blocking) COHORT_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  const int device = from.is_cuda() ? from.index : to.index;
  DeviceGuard guard(device);
  cudaStream_t stream = current_cuda_stream(device);
  const cudaMemcpyKind kind = from.is_cuda() ? cudaMemcpyDeviceToHost : cudaMemcpyHostToDevice;
  COHORT_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), bytes, kind, stream));
  // Host memory is read (or written) by the copy: without pinned memory and non_blocking, the host
  // may touch it as soon as this returns, so wait.
  const bool host_pinned = from.is_cuda() ? dst.storage()->is_pinned() : src.storage()->is_pinned();
  if (!non_blocking || !host_pinned) {
    COHORT_CUDA_CHECK(cudaStreamSynchronize(stream));
  } else {
    pinned_record_use(from.is_cuda() ? dst.raw_data() : src.raw_data(), device);
  }
}

}  // namespace cohort::detail::cuda
