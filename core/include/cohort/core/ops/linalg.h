// Matrix products. On the CPU through oneDNN when built with it, cohort's own blocked loops
// otherwise: f32 and f64 (f64 always runs on cohort's loops: oneDNN has no f64); bf16 and f16
// operands are multiplied in f32 and the result rounded back. On a CUDA device through cuBLAS in
// the operands' dtype: f32 in f32 (TF32 only after cuda::set_allow_tf32(true)), f64 in f64, bf16
// and f16 with f32 accumulation. Operands must share one floating dtype and one device. Under an
// AutocastGuard (amp.h) CUDA operands are cast to the autocast dtype first.
#pragma once

#include "cohort/core/tensor.h"

namespace cohort {

// PyTorch's matmul semantics: 1-D x 1-D is a dot product; 2-D x 2-D a matrix product; batched
// operands (..., n, k) x (..., k, m) broadcast their batch dims; a 1-D operand is promoted to a
// matrix and the added dim removed afterwards.
Tensor matmul(const Tensor& a, const Tensor& b);
// (b, n, k) x (b, k, m) -> (b, n, m), no broadcasting.
Tensor bmm(const Tensor& a, const Tensor& b);
// y = x W^T + b for x (..., in), weight (out, in), bias (out) or undefined.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace cohort
