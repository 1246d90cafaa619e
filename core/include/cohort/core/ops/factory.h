// Making tensors: filled, ranged, from data, random.
#pragma once

#include <vector>

#include "cohort/core/generator.h"
#include "cohort/core/tensor.h"

namespace cohort {

Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
Tensor scalar_tensor(double value, TensorOptions options = {});  // shape ()
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);

// [start, end) by step, like numpy/PyTorch arange (i64 by default when all arguments are integers
// is PyTorch's rule; here the dtype is whatever `options` says, f32 unless told).
Tensor arange(double end, TensorOptions options = {});
Tensor arange(double start, double end, double step = 1.0, TensorOptions options = {});

// A tensor holding a copy of `values` with the given shape (numel must match; by default 1-D, so
// tensor({4}) has shape (1), like torch.tensor([4]); use scalar_tensor() for shape ()).
template <class T>
Tensor from_vector(const std::vector<T>& values, Shape shape = {}, bool requires_grad = false);
// f32 from a list of numbers: tensor({1, 2, 3}) or tensor({1, 2, 3, 4}, {2, 2}).
Tensor tensor(std::initializer_list<double> values, Shape shape = {}, TensorOptions options = {});

// Uniform on [0, 1), standard normal, integers in [low, high). `gen` defaults to the default
// generator; the same generator state gives the same values whatever the thread count.
Tensor rand(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
Tensor randn(const Shape& shape, TensorOptions options = {}, Generator* gen = nullptr);
Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options = DType::i64,
               Generator* gen = nullptr);

}  // namespace cohort
