// Copies between devices, for Tensor::to(Device) and copy_ (implementation-only header, no CUDA
// types; cuda/stubs.cpp throws in a build without CUDA).
#pragma once

#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

// dst = src for two contiguous tensors of the same dtype and element count on different devices
// (at least one a CUDA device). Queued on the current stream of the CUDA side (the destination's
// for device-to-device). The host waits for the copy unless `non_blocking` (then the host side
// must be pinned memory, or the copy is synchronous anyway, as CUDA does with pageable memory).
void copy_across(const Tensor& dst, const Tensor& src, bool non_blocking);

}  // namespace cohort::detail::cuda
