// Elementwise kernels on CUDA tensors, as the CPU op files call them (implementation-only header,
// free of CUDA types so that every build compiles the callers; cuda/stubs.cpp throws in a build
// without CUDA).
//
// The op files keep their argument checks, type promotion, broadcasting and autograd in one place
// for both devices; where the CPU path runs a loop with a lambda, the CUDA path names the same
// computation by an op code. Operands arrive as the CPU kernels get them: already converted to the
// computing dtype and expanded (stride 0) to the output's shape, all on the output's device.
// 16-bit floats compute in float, as on the CPU.
#pragma once

#include <cstdint>

#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

// out = f(in). `out` and `in` have the same dtype unless noted.
enum class UnaryOp : uint8_t {
  abs, relu, gelu_erf, gelu_tanh, tanh, sigmoid, exp, log, sqrt, square,
  pow_scalar,   // in ^ a (floating dtypes; a == 2 squares)
  pow_int,      // in ^ a for integer dtypes, by squaring (a >= 0 integral)
  clamp,        // min(max(in, a), b) with NaN passing through (a, b already saturated for integers)
  logical_not,  // out is bool: in == 0
};
void unary(const Tensor& out, const Tensor& in, UnaryOp op, double a = 0, double b = 0);

// out = g * f'(s), the input gradient of a unary op, where s is the saved tensor the CPU kernel
// uses (the output y for relu, tanh, sigmoid, exp, sqrt; the input x for the others).
// Floating dtypes only; g, s and out share the dtype.
enum class UnaryGradOp : uint8_t {
  abs, relu, gelu_erf, gelu_tanh, tanh, sigmoid, exp, log, sqrt, square,
  pow_scalar,  // g * a * x^(a-1) (2gx for a == 2, 0 for a == 0)
  clamp,       // g where a <= x <= b, else 0
};
void unary_grad(const Tensor& out, const Tensor& g, const Tensor& s, UnaryGradOp op, double a = 0, double b = 0);

// out = f(x, y) over out's shape.
enum class BinaryOp : uint8_t {
  add,       // x + alpha * y
  sub, mul, div,
  pow,       // x ^ y (integers by squaring, as int_pow on the CPU)
  maximum, minimum,  // NaN propagates
  eq, ne, lt, le, gt, ge,  // out is bool
  masked_fill,  // y is a bool mask: y ? alpha : x
  mask_keep,    // y is a bool mask: y ? x : 0 (a gradient)
  mask_drop,    // y is a bool mask: y ? 0 : x
};
void binary(const Tensor& out, const Tensor& x, const Tensor& y, BinaryOp op, double alpha = 1);

// out = f(g, x, y): one input's gradient of a binary op, before summing to the input's shape.
enum class TernaryGradOp : uint8_t {
  pow_base,      // y == 0 ? 0 : g * y * x^(y-1)
  pow_exponent,  // (x == 0 && y >= 0) ? 0 : g * x^y * log(x)
  max_first, max_second, min_first, min_second,  // the winner gets g, a tie splits it
};
void ternary_grad(const Tensor& out, const Tensor& g, const Tensor& x, const Tensor& y, TernaryGradOp op);

// out = c ? x : y (c bool).
void where(const Tensor& out, const Tensor& c, const Tensor& x, const Tensor& y);

// dst = src converted to dst's dtype; src has dst's shape (a broadcast view allowed) and is on
// dst's device.
void copy(const Tensor& dst, const Tensor& src);
// Every element of t (any strides) = value converted to t's dtype.
void fill(const Tensor& t, double value);

}  // namespace cohort::detail::cuda
