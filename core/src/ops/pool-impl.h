// The 2-D pooling kernels behind max_pool2d and avg_pool2d, on oneDNN and on direct loops
// (implementation-only header).
//
// Buffers are contiguous NCHW: x (N, C, H, W), y (N, C, Ho, Wo). Windows are kernel x kernel,
// start at (oh*stride - padding, ow*stride - padding), and never lie wholly in the padding
// (padding <= kernel/2). Max pooling treats padding as -inf; average pooling divides by
// kernel*kernel (count_include_pad) or by the number of window elements inside the input.
#pragma once

#include <cstdint>

#include "cohort/config.h"

namespace cohort::detail {

struct PoolGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0;
  int64_t ho = 0, wo = 0;
  int64_t kernel = 1, stride = 1, padding = 0;
  bool count_include_pad = true;
};

// Direct loops (pool_fallback.cpp), f32 and f64. indices (N, C, Ho, Wo) receive the position
// h*W + w of each maximum within its (H, W) plane, as PyTorch's return_indices does.
template <class T>
void max_pool_forward_fallback(const PoolGeometry& g, const T* x, T* y, int64_t* indices);
template <class T>
void max_pool_backward_fallback(const PoolGeometry& g, const T* dy, const int64_t* indices, T* dx);
template <class T>
void avg_pool_forward_fallback(const PoolGeometry& g, const T* x, T* y);
template <class T>
void avg_pool_backward_fallback(const PoolGeometry& g, const T* dy, T* dx);

#if COHORT_WITH_DNNL
// oneDNN pooling primitives (pool_dnnl.cpp), f32, average pooling only (max pooling always runs
// on the direct loops, which beat oneDNN's reference kernel for plain NCHW many times over).
void avg_pool_forward_dnnl(const PoolGeometry& g, const float* x, float* y);
void avg_pool_backward_dnnl(const PoolGeometry& g, const float* dy, float* dx);
#endif

}  // namespace cohort::detail
