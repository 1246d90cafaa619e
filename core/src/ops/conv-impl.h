// The 2-D convolution kernels behind conv2d, on oneDNN and on cohort's own loops
// (implementation-only header).
//
// Every kernel takes contiguous NCHW buffers: x (N, C_in, H, W), weight (C_out, C_in/groups, kH,
// kW), y (N, C_out, Ho, Wo). Padding, stride and dilation follow PyTorch (dilation 1 means a dense
// kernel). Backward kernels overwrite their outputs.
#pragma once

#include <cstdint>

#include "cohort/config.h"

namespace cohort::detail {

struct ConvGeometry {
  int64_t n = 0, c_in = 0, h = 0, w = 0;  // input
  int64_t c_out = 0, kh = 0, kw = 0;      // weight
  int64_t ho = 0, wo = 0;                 // output
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
};

// im2col + gemm (conv_fallback.cpp), for f32 and f64.
template <class T>
void conv_forward_fallback(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* y);
template <class T>
void conv_backward_data_fallback(const ConvGeometry& g, const T* dy, const T* weight, T* dx);
// dbias may be null (no bias or not needed).
template <class T>
void conv_backward_weights_fallback(const ConvGeometry& g, const T* x, const T* dy, T* dweight, T* dbias);

#if COHORT_WITH_DNNL
// oneDNN convolution primitives (conv_dnnl.cpp), f32 only.
void conv_forward_dnnl(const ConvGeometry& g, const float* x, const float* weight, const float* bias, float* y);
void conv_backward_data_dnnl(const ConvGeometry& g, const float* dy, const float* weight, float* dx);
void conv_backward_weights_dnnl(const ConvGeometry& g, const float* x, const float* dy, float* dweight, float* dbias);
#endif

}  // namespace cohort::detail
