// Neural-network ops (the functional layer under core/nn's modules).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "cohort/core/generator.h"
#include "cohort/core/tensor.h"

namespace cohort {

struct Conv2dOptions {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
};
// x (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW), bias (C_out) or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              Conv2dOptions options = {});

struct Pool2dOptions {
  int64_t kernel_size = 2;
  int64_t stride = 0;  // 0: same as kernel_size
  int64_t padding = 0;
  bool count_include_pad = true;  // avg_pool2d only, PyTorch's default
};
Tensor max_pool2d(const Tensor& x, Pool2dOptions options);  // x (N, C, H, W)
Tensor avg_pool2d(const Tensor& x, Pool2dOptions options);

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// softmax(q k^T * scale) v over the last two dims, as one op (PyTorch's
// F.scaled_dot_product_attention without a mask tensor or dropout): q (..., L, E), k (..., S, E),
// v (..., S, Ev) with the same leading dims -> (..., L, Ev). is_causal: query i sees keys j <= i
// (the top-left aligned lower triangle, as in PyTorch). scale defaults to 1 / sqrt(E). The output
// is laid out in q's memory order (a (B, H, T, D) view of a (B, T, H * D) projection gives a view
// of a dense (B, T, H, D) block).
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

// Multi-head self-attention from a packed projection: qkv (B, T, 3C) holds q, k and v side by side
// (as a Linear(C, 3C) makes them), each split into n_heads heads of C / n_heads channels; returns
// the heads merged back, (B, T, C). The same as splitting qkv into (B, n_heads, T, C / n_heads)
// views and calling scaled_dot_product_attention, but backward returns one (B, T, 3C) gradient
// instead of three slices that autograd zero-pads and sums.
Tensor self_attention(const Tensor& qkv, int64_t n_heads, bool is_causal = false,
                      std::optional<double> scale = std::nullopt);

enum class Reduction { none, mean, sum };
struct CrossEntropyOptions {
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::mean;  // mean over the targets that are not ignored
};
// logits (N, C) or (N, C, d1, ...), target i64 class indices (N) or (N, d1, ...).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, CrossEntropyOptions options = {});

// Normalises over the trailing dims given by normalized_shape; weight/bias may be undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// Rows of weight (num, dim) picked by integer indices of any shape -> indices.shape + (dim).
Tensor embedding(const Tensor& weight, const Tensor& indices);

// Zeroes each element with probability p and scales the rest by 1/(1-p) when training.
Tensor dropout(const Tensor& x, double p, bool training = true, Generator* gen = nullptr);

}  // namespace cohort
