// Convolution and pooling on CUDA tensors, as ops/conv.cpp and ops/pool.cpp call them
// (implementation-only header, free of CUDA types so that every build compiles the callers).
//
// Convolutions run on cuDNN's legacy (v7-style) API (cudnn_conv.cpp; in a CUDA build without cuDNN,
// dnn_without_cudnn.cpp throws a DeviceError saying how to get it). Pooling runs on cohort's own
// kernels (pool.cu), which match the CPU loops exactly: the same windows, the first maximum (or the
// first NaN) wins, the same summation order. Buffers are contiguous NCHW on one CUDA device in one
// floating dtype (f32, f64, bf16, f16; 16-bit ones compute in f32), shapes as in conv-impl.h and
// pool-impl.h. Every call is queued on the current stream of the output's device.
#pragma once

#include "../ops/conv-impl.h"
#include "../ops/pool-impl.h"
#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

// x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), y (N, C_out, Ho, Wo); no bias (the op adds
// it). Each overwrites its output. Return false, having done nothing, when cuDNN has no algorithm
// for this dtype (the caller then computes in f32); an f32 or f64 problem cuDNN refuses throws.
bool conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& y);
bool conv_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& weight, const Tensor& dx);
bool conv_backward_weights(const ConvGeometry& g, const Tensor& x, const Tensor& dy, const Tensor& dweight);

// x (N, C, H, W), y and indices (N, C, Ho, Wo); indices (i64) receive h*W + w of each maximum.
void max_pool_forward(const PoolGeometry& g, const Tensor& x, const Tensor& y, const Tensor& indices);
void max_pool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& indices, const Tensor& dx);
void avg_pool_forward(const PoolGeometry& g, const Tensor& x, const Tensor& y);
void avg_pool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& dx);

}  // namespace cohort::detail::cuda
