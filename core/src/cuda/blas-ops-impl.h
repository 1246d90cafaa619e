// Matrix products and attention on CUDA tensors, as the op files call them (implementation-only
// header, free of CUDA types so that every build compiles the callers; cuda/stubs_blas.cpp throws
// in a build without CUDA).
//
// Products run on cuBLAS (blas.cpp, loaded with dlopen on first use), attention on cuBLAS's batched
// products plus two row kernels (attention.cu). Every call is queued on the current stream of the
// output's device and returns at once.
#pragma once

#include <cstdint>

#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

// out = a @ b (+ bias) over out's batch dims.
//   a (..., m, k), b (..., k, n), out (..., m, n): the same number of dims (at least 2) and the
//   same batch sizes (a broadcast operand is an expand()ed view, stride 0), all on out's device.
//   a and b share a floating dtype; out has that dtype, or f32 when a and b are bf16/f16 (scores
//   kept in float). bias (n) has out's dtype, or is undefined.
// Computes in f32 for f32 (TF32 only when cuda::allow_tf32()), bf16 and f16 (f32 accumulation, the
// result rounded once), in f64 for f64. Any strides: a matrix with a unit stride in one dim and a
// leading dim at least its other dim (plain, transposed, a column slice) goes to cuBLAS as it is;
// others are copied once. Batch dims are merged where the strides allow and the largest left is
// cuBLAS's batch (one strided-batched call per index of the others); a weight shared by a batch
// whose rows follow each other folds into one product. out must not overlap a or b.
void matmul(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias = Tensor());

// Whether cuBLAS takes a (rows, cols) matrix with these strides (elements) without a copy.
bool blas_layout_ok(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride);

// scaled_dot_product_attention's kernels (ops/attention.cpp). q (..., L, E), k (..., S, E),
// v (..., S, Ev) with the same batch dims, any strides, one floating dtype T; A is the
// accumulation dtype (f64 for f64, else f32). probs (batch, L, S) contiguous of dtype A, where
// batch is the product of the batch dims; L, S >= 1.
//   forward:  probs = softmax(scale * q k^T) row by row (causal: keys j <= i; the others 0),
//             out (..., L, Ev) = probs v.
//   backward: from probs and g = dOut (..., L, Ev): dv = P^T g, dS = scale * P * (dP - rowsum(P dP))
//             with dP = g v^T, dq = dS k, dk = dS^T q; outputs of q's, k's and v's shapes.
// For bf16/f16, the scores and dP are kept in f32 and P and dS rounded to T for the products that
// follow (f32 accumulation throughout).
void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& probs,
                       bool causal, double scale);
void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs, const Tensor& g,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv, bool causal, double scale);

// Fused (flash) attention (flash_attention.cu) for bf16/f16 q, k, v with E == Ev in {32, 64, 128},
// rows contiguous (last stride 1), at most 4 batch dims, when cuda::flash_attention() is on.
// forward: out as above and lse (batch, L) f32 = log of each row's softmax denominator (with the
// row max), instead of P. backward: from q, k, v, out, lse and g, as attention_backward.
bool flash_attention_applies(const Tensor& q, const Tensor& k, const Tensor& v);
void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                             bool causal, double scale);
void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& g, const Tensor& dq, const Tensor& dk, const Tensor& dv, bool causal,
                              double scale);

}  // namespace cohort::detail::cuda
