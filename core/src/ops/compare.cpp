// Comparisons (eq, ne, lt, le, gt, ge) and logical_not: bool results, no gradient.
//
// Mixed dtypes compare in promote_types(a, b), like PyTorch; a double operand takes the tensor's
// dtype (f32 for an integer tensor and a fractional value), so `x > 0.5` on i64 compares in f32.
#include "../cuda/elementwise-ops-impl.h"
#include "binary-impl.h"
#include "cohort/core/ops/elementwise.h"

namespace cohort {

namespace {

using detail::cuda::BinaryOp;

template <class Cmp>
Tensor compare(const Tensor& a, const Tensor& b, const char* op, BinaryOp code, const Cmp& cmp) {
  detail::BinaryOperands p = detail::prepare_binary(a, b, op);
  Tensor out = Tensor::empty(p.shape, TensorOptions(DType::boolean).with_device(p.a.device()));
  if (out.device().is_cuda()) {
    detail::cuda::binary(out, p.a, p.b, code);
    return out;
  }
  dispatch(p.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::binary_kernel<bool, T, T>(out, p.a, p.b, [&cmp](T x, T y) { return cmp(A(x), A(y)); });
  });
  return out;
}

Tensor with_scalar(const Tensor& a, double b, const char* op) {
  COHORT_CHECK(a.defined(), ValueError, op, ": the input tensor is undefined");
  return detail::scalar_like(a, b);
}

}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) {
  return compare(a, b, "eq", BinaryOp::eq, [](auto x, auto y) { return x == y; });
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return compare(a, b, "ne", BinaryOp::ne, [](auto x, auto y) { return x != y; });
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return compare(a, b, "lt", BinaryOp::lt, [](auto x, auto y) { return x < y; });
}
Tensor le(const Tensor& a, const Tensor& b) {
  return compare(a, b, "le", BinaryOp::le, [](auto x, auto y) { return x <= y; });
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return compare(a, b, "gt", BinaryOp::gt, [](auto x, auto y) { return x > y; });
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return compare(a, b, "ge", BinaryOp::ge, [](auto x, auto y) { return x >= y; });
}

Tensor eq(const Tensor& a, double b) { return eq(a, with_scalar(a, b, "eq")); }
Tensor ne(const Tensor& a, double b) { return ne(a, with_scalar(a, b, "ne")); }
Tensor lt(const Tensor& a, double b) { return lt(a, with_scalar(a, b, "lt")); }
Tensor le(const Tensor& a, double b) { return le(a, with_scalar(a, b, "le")); }
Tensor gt(const Tensor& a, double b) { return gt(a, with_scalar(a, b, "gt")); }
Tensor ge(const Tensor& a, double b) { return ge(a, with_scalar(a, b, "ge")); }

Tensor logical_not(const Tensor& x) {
  COHORT_CHECK(x.defined(), ValueError, "logical_not: the input tensor is undefined");
  Tensor out = Tensor::empty(x.shape(), TensorOptions(DType::boolean).with_device(x.device()));
  const Tensor in = x.detach();
  if (x.device().is_cuda()) {
    detail::cuda::unary(out, in, detail::cuda::UnaryOp::logical_not);
    return out;
  }
  dispatch(x.dtype(), "logical_not", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::unary_kernel<bool, T>(out, in, [](T v) { return A(v) == A(0); });
  });
  return out;
}

}  // namespace cohort
