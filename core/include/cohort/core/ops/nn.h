// Neural-network ops (the functional layer under core/nn's modules).
#pragma once

#include <cstdint>
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
