// pow (tensor and scalar exponents), maximum and minimum, with broadcasting and their gradients.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../cuda/elementwise-ops-impl.h"
#include "binary-impl.h"
#include "int_pow-impl.h"
#include "cohort/core/ops/elementwise.h"

namespace cohort {

using detail::BinaryOperands;
using detail::int_pow;
using detail::prepare_binary;
using detail::cuda::BinaryOp;
using detail::cuda::TernaryGradOp;
using detail::cuda::UnaryGradOp;
using detail::cuda::UnaryOp;

namespace {

// Reduces a gradient to an input's shape and dtype.
Tensor grad_for(const Tensor& g, const Shape& shape, DType dtype) {
  Tensor r = sum_to(g, shape);
  return r.dtype() == dtype ? r : r.to(dtype);
}

// A binary op's result: out = f(a, b) over the broadcast shape, computed in acc_t of the promoted
// dtype. `dispatcher` is dispatch, dispatch_numeric or dispatch_floating.
template <class Dispatch, class F>
Tensor map_binary(const BinaryOperands& p, const char* op, BinaryOp code, Dispatch dispatcher, const F& f) {
  Tensor out = Tensor::empty(p.shape, TensorOptions(p.dtype).with_device(p.a.device()));
  if (out.device().is_cuda()) {
    dispatcher(p.dtype, op, [](auto) {});  // the CPU's dtype check
    detail::cuda::binary(out, p.a, p.b, code);
    return out;
  }
  dispatcher(p.dtype, op, [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::binary_kernel<T, T, T>(out, p.a, p.b, [&f](T x, T y) { return T(f(A(x), A(y))); });
  });
  return out;
}

// One input's gradient f(g, a, b) in one pass over the broadcast shape, then summed to its shape.
template <class F>
Tensor ternary_grad(const Tensor& g, const Tensor& a, const Tensor& b, TernaryGradOp code, const F& f) {
  const Tensor gd = g.to(a.dtype()).expand(a.shape());
  Tensor out = Tensor::empty(a.shape(), TensorOptions(a.dtype()).with_device(a.device()));
  if (out.device().is_cuda()) {
    detail::cuda::ternary_grad(out, gd, a, b, code);
    return out;
  }
  dispatch_floating(a.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::ternary_kernel<T, T, T, T>(out, gd, a, b, [&f](T gv, T x, T y) { return T(f(A(gv), A(x), A(y))); });
  });
  return out;
}

struct DispatchNumeric {
  template <class F>
  void operator()(DType t, const char* op, F&& f) const { dispatch_numeric(t, op, f); }
};
struct DispatchAll {
  template <class F>
  void operator()(DType t, const char* op, F&& f) const { dispatch(t, op, f); }
};

// maximum (is_max) or minimum. NaN propagates. The gradient goes to the larger (smaller) input and
// is split evenly on ties, like PyTorch.
Tensor extremum(const Tensor& a, const Tensor& b, bool is_max, const char* op) {
  BinaryOperands p = prepare_binary(a, b, op);
  Tensor out = is_max ? map_binary(p, op, BinaryOp::maximum, DispatchAll(), [](auto x, auto y) {
    return (x > y || x != x) ? x : y;
  }) : map_binary(p, op, BinaryOp::minimum, DispatchAll(), [](auto x, auto y) {
    return (x < y || x != x) ? x : y;
  });
  if (!is_floating(p.dtype)) return out;
  const Tensor pa = p.a, pb = p.b;
  const Shape sa = a.shape(), sb = b.shape();
  const DType da = a.dtype(), db = b.dtype();
  return record(out, op, {a, b}, [=](const Tensor& g, const GradNeeds& n) {
    // The input that loses gets nothing: for maximum, a loses where a < b.
    auto to_first = [is_max](auto gv, auto x, auto y) {
      using A = decltype(x);
      return x == y ? A(0.5) * gv : ((is_max ? x < y : x > y) ? A(0) : gv);
    };
    auto to_second = [is_max](auto gv, auto x, auto y) {
      using A = decltype(x);
      return x == y ? A(0.5) * gv : ((is_max ? x > y : x < y) ? A(0) : gv);
    };
    const TernaryGradOp first = is_max ? TernaryGradOp::max_first : TernaryGradOp::min_first;
    const TernaryGradOp second = is_max ? TernaryGradOp::max_second : TernaryGradOp::min_second;
    Tensor ga, gb;
    if (n[0] && is_floating(da)) ga = grad_for(ternary_grad(g, pa, pb, first, to_first), sa, da);
    if (n[1] && is_floating(db)) gb = grad_for(ternary_grad(g, pa, pb, second, to_second), sb, db);
    return grads(ga, gb);
  });
}

}  // namespace

Tensor pow(const Tensor& a, const Tensor& b) {
  BinaryOperands p = prepare_binary(a, b, "pow");
  Tensor out = map_binary(p, "pow", BinaryOp::pow, DispatchNumeric(), [](auto x, auto y) {
    if constexpr (std::is_integral_v<decltype(x)>) {
      return int_pow(x, y);
    } else {
      return std::pow(x, y);
    }
  });
  if (!is_floating(p.dtype)) return out;
  const Tensor pa = p.a, pb = p.b;
  const Shape sa = a.shape(), sb = b.shape();
  const DType da = a.dtype(), db = b.dtype();
  return record(out, "pow", {a, b}, [=](const Tensor& g, const GradNeeds& n) {
    Tensor ga, gb;
    // d/da = b * a^(b-1), taken as 0 where b == 0 (so 0^0 has no NaN gradient), as PyTorch does.
    if (n[0] && is_floating(da)) {
      ga = grad_for(ternary_grad(g, pa, pb, TernaryGradOp::pow_base, [](auto gv, auto x, auto y) {
                      using A = decltype(x);
                      return y == A(0) ? A(0) : gv * y * std::pow(x, y - A(1));
                    }), sa, da);
    }
    // d/db = a^b * log(a), taken as 0 where a == 0 and b >= 0 (the limit), as PyTorch does.
    if (n[1] && is_floating(db)) {
      gb = grad_for(ternary_grad(g, pa, pb, TernaryGradOp::pow_exponent, [](auto gv, auto x, auto y) {
                      using A = decltype(x);
                      return (x == A(0) && y >= A(0)) ? A(0) : gv * std::pow(x, y) * std::log(x);
                    }), sb, db);
    }
    return grads(ga, gb);
  });
}

Tensor pow(const Tensor& a, double exponent) {
  COHORT_CHECK(a.defined(), ValueError, "pow: the input tensor is undefined");
  const bool integral_exponent = std::trunc(exponent) == exponent;
  if (!is_floating(a.dtype())) {
    // Integers stay integers for an integral exponent; otherwise compute in f32, like PyTorch.
    if (!integral_exponent) return pow(a.to(DType::f32), exponent);
    COHORT_CHECK(exponent >= 0, ValueError, "pow: integers to negative integer powers are not allowed (",
                 dtype_name(a.dtype()), " tensor to the power ", exponent, "); convert to a floating dtype first");
    const Tensor x = a.dtype() == DType::boolean ? a.to(DType::i64) : a.detach();
    Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
    if (x.device().is_cuda()) {
      detail::cuda::unary(out, x, UnaryOp::pow_int, exponent);
      return out;
    }
    dispatch_numeric(x.dtype(), "pow", [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_integral_v<T>) {
        const T e = static_cast<T>(exponent);
        detail::unary_kernel<T, T>(out, x, [e](T v) { return int_pow(v, e); });
      }
    });
    return out;
  }
  Tensor out = Tensor::empty(a.shape(), TensorOptions(a.dtype()).with_device(a.device()));
  const Tensor x = a.detach();
  if (x.device().is_cuda()) {
    detail::cuda::unary(out, x, UnaryOp::pow_scalar, exponent);
  } else {
    dispatch_floating(a.dtype(), "pow", [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      const A e = static_cast<A>(exponent);
      if (exponent == 2.0) {  // the common case (squared errors, norms): no libm call
        detail::unary_kernel<T, T>(out, x, [](T v) { return T(A(v) * A(v)); });
      } else {
        detail::unary_kernel<T, T>(out, x, [e](T v) { return T(std::pow(A(v), e)); });
      }
    });
  }
  return record(out, "pow", {a}, [x, exponent](const Tensor& g, const GradNeeds&) {
    // d/dx = e * x^(e-1); 0 for e == 0.
    const Tensor gd = g.to(x.dtype()).expand(x.shape());
    Tensor gi = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
    if (x.device().is_cuda()) {
      detail::cuda::unary_grad(gi, gd, x, UnaryGradOp::pow_scalar, exponent);
      return grads(gi);
    }
    dispatch_floating(x.dtype(), "pow", [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      const A e = static_cast<A>(exponent);
      if (exponent == 2.0) {
        detail::binary_kernel<T, T, T>(gi, gd, x, [](T gv, T v) { return T(A(2) * A(v) * A(gv)); });
      } else if (exponent == 0.0) {
        detail::binary_kernel<T, T, T>(gi, gd, x, [](T, T) { return T(A(0)); });
      } else {
        detail::binary_kernel<T, T, T>(gi, gd, x, [e](T gv, T v) {
          return T(A(gv) * e * std::pow(A(v), e - A(1)));
        });
      }
    });
    return grads(gi);
  });
}

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(a, b, true, "maximum"); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(a, b, false, "minimum"); }

}  // namespace cohort
