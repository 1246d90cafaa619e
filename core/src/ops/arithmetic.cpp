// add, sub, mul, div (and the operators and in-place forms built on them).
#include "../cuda/elementwise-ops-impl.h"
#include "binary-impl.h"
#include "cohort/core/ops/elementwise.h"

namespace cohort {

using detail::BinaryOperands;
using detail::prepare_binary;
using detail::cuda::BinaryOp;

namespace {

template <class Op>
Tensor binary_arith(const Tensor& a, const Tensor& b, const char* name, BinaryOp code, const Op& op) {
  BinaryOperands p = prepare_binary(a, b, name);
  Tensor out = Tensor::empty(p.shape, TensorOptions(p.dtype).with_device(p.a.device()));
  if (out.device().is_cuda()) {
    dispatch_numeric(p.dtype, name, [](auto) {});  // the CPU's dtype check
    detail::cuda::binary(out, p.a, p.b, code);
    return out;
  }
  dispatch_numeric(p.dtype, name, [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::binary_kernel<T, T, T>(out, p.a, p.b, [&op](T x, T y) { return T(op(A(x), A(y))); });
  });
  return out;
}

// Reduces a gradient to an input's shape and dtype.
Tensor grad_for(const Tensor& g, const Shape& shape, DType dtype) {
  Tensor r = sum_to(g, shape);
  return r.dtype() == dtype ? r : r.to(dtype);
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_arith(a, b, "add", BinaryOp::add, [](auto x, auto y) { return x + y; });
  const Shape sa = a.shape(), sb = b.shape();
  const DType da = a.dtype(), db = b.dtype();
  return record(out, "add", {a, b}, [=](const Tensor& g, const GradNeeds& n) {
    return grads(n[0] ? grad_for(g, sa, da) : Tensor(), n[1] ? grad_for(g, sb, db) : Tensor());
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_arith(a, b, "sub", BinaryOp::sub, [](auto x, auto y) { return x - y; });
  const Shape sa = a.shape(), sb = b.shape();
  const DType da = a.dtype(), db = b.dtype();
  return record(out, "sub", {a, b}, [=](const Tensor& g, const GradNeeds& n) {
    return grads(n[0] ? grad_for(g, sa, da) : Tensor(), n[1] ? grad_for(neg(g), sb, db) : Tensor());
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_arith(a, b, "mul", BinaryOp::mul, [](auto x, auto y) { return x * y; });
  Tensor sa = a.detach(), sb = b.detach();
  return record(out, "mul", {a, b}, [sa, sb](const Tensor& g, const GradNeeds& n) {
    return grads(n[0] ? grad_for(mul(g, sb), sa.shape(), sa.dtype()) : Tensor(),
                 n[1] ? grad_for(mul(g, sa), sb.shape(), sb.dtype()) : Tensor());
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  // Integer division of integer tensors truncates toward zero is C's rule; PyTorch's `/` is true
  // division, so integer operands are computed in f32.
  if (!is_floating(promote_types(a.dtype(), b.dtype()))) return div(a.to(DType::f32), b.to(DType::f32));
  Tensor out = binary_arith(a, b, "div", BinaryOp::div, [](auto x, auto y) { return x / y; });
  Tensor sa = a.detach(), sb = b.detach();
  return record(out, "div", {a, b}, [sa, sb](const Tensor& g, const GradNeeds& n) {
    Tensor ga, gb;
    if (n[0]) ga = grad_for(div(g, sb), sa.shape(), sa.dtype());
    if (n[1]) gb = grad_for(neg(div(mul(g, sa), mul(sb, sb))), sb.shape(), sb.dtype());
    return grads(ga, gb);
  });
}

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, detail::scalar_like(a, b)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, detail::scalar_like(a, b)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, detail::scalar_like(a, b)); }
Tensor operator/(const Tensor& a, double b) { return div(a, detail::scalar_like(a, b)); }
Tensor operator+(double a, const Tensor& b) { return add(detail::scalar_like(b, a), b); }
Tensor operator-(double a, const Tensor& b) { return sub(detail::scalar_like(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return mul(detail::scalar_like(b, a), b); }
Tensor operator/(double a, const Tensor& b) { return div(detail::scalar_like(b, a), b); }

namespace {
void check_in_place(const Tensor& self, const Tensor& other, const char* op) {
  COHORT_CHECK(!(GradMode::is_enabled() && (self.requires_grad() || (other.defined() && other.requires_grad()))),
               AutogradError, op, ": in-place ops record no gradient; run them inside a NoGradGuard scope "
               "or use the out-of-place form");
  if (other.defined()) {
    const Shape s = broadcast_shapes(self.shape(), other.shape(), op);
    COHORT_CHECK(s == self.shape(), ShapeError, op, ": the result of shape ", shape_str(s),
                 " does not fit in place into shape ", self.shape_str());
  }
}
}  // namespace

Tensor& add_(Tensor& self, const Tensor& other, double alpha) {
  check_in_place(self, other, "add_");
  Tensor b = other.detach().to(self.dtype()).detach().expand(self.shape());
  if (self.device().is_cuda()) {
    dispatch_numeric(self.dtype(), "add_", [](auto) {});
    detail::cuda::binary(self, self, b.device() == self.device() ? b : b.to(self.device()), BinaryOp::add, alpha);
    self.storage()->bump_version();
    return self;
  }
  dispatch_numeric(self.dtype(), "add_", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    const A al = static_cast<A>(alpha);
    if (alpha == 1.0) {
      detail::binary_kernel<T, T, T>(self, self, b, [](T x, T y) { return T(A(x) + A(y)); });
    } else {
      detail::binary_kernel<T, T, T>(self, self, b, [al](T x, T y) { return T(A(x) + al * A(y)); });
    }
  });
  self.storage()->bump_version();
  return self;
}

Tensor& mul_(Tensor& self, const Tensor& other) {
  check_in_place(self, other, "mul_");
  Tensor b = other.detach().to(self.dtype()).detach().expand(self.shape());
  if (self.device().is_cuda()) {
    dispatch_numeric(self.dtype(), "mul_", [](auto) {});
    detail::cuda::binary(self, self, b.device() == self.device() ? b : b.to(self.device()), BinaryOp::mul);
    self.storage()->bump_version();
    return self;
  }
  dispatch_numeric(self.dtype(), "mul_", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::binary_kernel<T, T, T>(self, self, b, [](T x, T y) { return T(A(x) * A(y)); });
  });
  self.storage()->bump_version();
  return self;
}

Tensor& mul_(Tensor& self, double value) { return mul_(self, detail::scalar_like(self, value)); }

}  // namespace cohort

namespace cohort {
Tensor neg(const Tensor& x) { return mul(x, detail::scalar_like(x, -1.0)); }
}  // namespace cohort
