// Shared plumbing for broadcasting binary ops (implementation-only header).
#pragma once

#include "cohort/core/autograd.h"
#include "cohort/core/ops/factory.h"
#include "loops-impl.h"

namespace cohort::detail {

// The result dtype and broadcast shape of a binary op, with both operands converted and expanded.
struct BinaryOperands {
  Shape shape;
  DType dtype;
  Tensor a, b;  // detached, converted to dtype, expanded to shape
};

// A 0-dim CPU tensor next to a CUDA tensor is moved to its device, as PyTorch allows; otherwise
// both operands must be on one device.
inline BinaryOperands prepare_binary(const Tensor& a, const Tensor& b, const char* op) {
  COHORT_CHECK(a.defined() && b.defined(), ValueError, op, ": an operand is undefined");
  Tensor x = a.detach(), y = b.detach();
  if (x.device() != y.device() && x.dim() == 0 && x.device().is_cpu()) x = x.to(y.device());
  if (x.device() != y.device() && y.dim() == 0 && y.device().is_cpu()) y = y.to(x.device());
  COHORT_CHECK(x.device() == y.device(), DeviceError, op, ": operands are on different devices (",
               a.device().str(), " and ", b.device().str(), "); move one with .to(", a.device().str(), ")");
  BinaryOperands r;
  r.shape = broadcast_shapes(a.shape(), b.shape(), op);
  r.dtype = promote_types(a.dtype(), b.dtype());
  r.a = x.to(r.dtype).detach().expand(r.shape);
  r.b = y.to(r.dtype).detach().expand(r.shape);
  return r;
}

// A scalar operand as a 0-dim tensor of the other operand's dtype (floats for integer tensors
// with a fractional scalar, like PyTorch).
inline Tensor scalar_like(const Tensor& t, double value) {
  DType dt = t.dtype();
  if (!is_floating(dt) && static_cast<double>(static_cast<int64_t>(value)) != value) dt = DType::f32;
  if (dt == DType::boolean) dt = DType::i64;
  return scalar_tensor(value, TensorOptions(dt).with_device(t.device()));
}

}  // namespace cohort::detail
