// Reductions and row-wise normalisation on CUDA tensors, as the CPU op files call them
// (implementation-only header, free of CUDA types so that every build compiles the callers;
// stubs_reduce.cpp throws in a build without CUDA).
//
// The op files (sum.cpp, minmax.cpp, softmax.cpp, cross_entropy.cpp, layer_norm.cpp) keep their
// checks, dtype rules, layouts and autograd; these entry points run the loops. Every tensor is
// contiguous and on one CUDA device, in the dtype the CPU loop gets, and every output was
// allocated by the caller. A reduction sees its input as (outer, R, inner): R is reduced, `inner`
// is the contiguous run of kept positions after it (1 when the reduced dims are the last ones).
//
// Accumulation follows the CPU: sums in double for floating dtypes (int64 for i64), softmax and
// layer norm in float (f32, bf16, f16) or double (f64), rounding once to the element type at the
// end. Only the order of the additions differs (a tree across threads instead of the CPU's lanes).
#pragma once

#include <cstdint>

#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

// ---- reduce.cu ----

// out[o, i] = scale * sum over r of in[o, r, i]. in is f32, f64, bf16, f16 or i64 (the CPU converts
// integers and bool to i64 first); out has in's dtype and outer * inner elements. R may be 0.
void sum(const Tensor& out, const Tensor& in, int64_t outer, int64_t reduced, int64_t inner, double scale);

// The first maximum (is_max) or minimum along R of in (any dtype), with NaN beating every number
// and the first NaN winning, as the CPU's beats() rule: values (in's dtype) and indices (i64, the
// position along R), outer * inner elements each. R >= 1. max(x) over all elements is outer = 1,
// R = numel, inner = 1 (values then may be 0-dim and indices one element).
void extreme(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t outer, int64_t reduced,
             int64_t inner, bool is_max);

// The gradient of extreme(): out (zeros, (outer, R, inner), floating) gets src[o, i] at
// out[o, indices[o, i], i]. src has out's dtype and outer * inner elements.
void scatter_extreme_grad(const Tensor& out, const Tensor& src, const Tensor& indices, int64_t outer,
                          int64_t reduced, int64_t inner);

// ---- softmax.cu ----

// out = softmax (or log_softmax) of x along C, x and out (outer, C, inner), floating, C >= 1.
void softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t C, int64_t inner, bool log);
// gx from the forward's output y and the upstream gradient g (y's dtype and shape):
// softmax: y * (g - sum(g * y)); log_softmax: g - exp(y) * sum(g), the sums along C.
void softmax_backward(const Tensor& gx, const Tensor& y, const Tensor& g, int64_t outer, int64_t C, int64_t inner,
                      bool log);

// The per-target loss of cross_entropy: loss[n, i] (f64, N * inner) = -logp[n, target[n, i], i],
// or 0 where the target is ignore_index. logp (N, C, inner) floating, target (N * inner) i64, its
// values already checked on the host.
void nll_loss(const Tensor& loss, const Tensor& logp, const Tensor& target, int64_t C, int64_t inner,
              int64_t ignore_index);
// d loss / d logits into gx (logp's shape and dtype): (exp(logp) - onehot(target)) * w, with
// w = g[n, i] when per_target (Reduction::none; g f64 of N * inner elements), else g[0] / divisor
// (g f64 of one element, divisor the count of targets for the mean, 1 for the sum); w = 0 where
// the target is ignore_index. g stays on the device: no synchronisation.
void cross_entropy_backward(const Tensor& gx, const Tensor& logp, const Tensor& target, const Tensor& g,
                            int64_t C, int64_t inner, int64_t ignore_index, bool per_target, double divisor);

// ---- layer_norm.cu ----

// x (rows, M) of a floating dtype T; w, b (M) and stats (rows, 2) in T's computing dtype (f32, or
// f64 for f64). y = (x - mean) * rstd * w + b per row, stats[r] = {mean, 1 / sqrt(var + eps)} with
// the biased variance.
void layer_norm(const Tensor& y, const Tensor& stats, const Tensor& x, const Tensor& w, const Tensor& b,
                int64_t rows, int64_t M, double eps);
// The gradients for the upstream g (x's shape and dtype): gx (x's dtype) and gw, gb (M, the
// computing dtype); an undefined output is not computed.
void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& x, const Tensor& stats,
                         const Tensor& w, const Tensor& g, int64_t rows, int64_t M);

}  // namespace cohort::detail::cuda
