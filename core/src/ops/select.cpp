// Selection: where, masked_fill, clamp, and their gradients (the upstream gradient, masked).
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../cuda/elementwise-ops-impl.h"
#include "binary-impl.h"
#include "cast-impl.h"
#include "cohort/core/ops/elementwise.h"

namespace cohort {

namespace {

// Masks are read as bytes: GCC does not vectorise a select on a loaded `bool`, but does on a byte
// (cohort's bool storage is one byte holding 0 or 1).
static_assert(sizeof(bool) == 1, "bool tensors are stored one byte per element");
using MaskByte = uint8_t;
using detail::cuda::BinaryOp;

// Reduces a gradient to an input's shape and dtype.
Tensor grad_for(const Tensor& g, const Shape& shape, DType dtype) {
  Tensor r = sum_to(g, shape);
  return r.dtype() == dtype ? r : r.to(dtype);
}

// g where keep(mask) is true, else 0, over mask's shape (mask is bool; g is converted to `dtype`).
template <class Keep>
Tensor masked_grad(const Tensor& g, const Tensor& mask, DType dtype, const Keep& keep) {
  const Tensor gd = g.to(dtype).expand(mask.shape());
  Tensor out = Tensor::empty(mask.shape(), TensorOptions(dtype).with_device(mask.device()));
  if (out.device().is_cuda()) {
    dispatch_floating(dtype, "backward", [](auto) {});
    detail::cuda::binary(out, gd, mask, keep(true) ? BinaryOp::mask_keep : BinaryOp::mask_drop);
    return out;
  }
  dispatch_floating(dtype, "backward", [&](auto tag) {
    using T = decltype(tag);
    detail::binary_kernel<T, T, MaskByte>(out, gd, mask, [&keep](T gv, MaskByte m) {
      const T zero = T(0.0f);
      return keep(m != 0) ? gv : zero;
    });
  });
  return out;
}

// out = c ? a : b over out's shape (c, a, b may be broadcast views). Like ternary_kernel, with a
// unit-stride branch so the common contiguous case vectorises.
template <class T>
void select_kernel(const Tensor& out, const Tensor& c, const Tensor& a, const Tensor& b) {
  detail::for_each_run<4>(out.shape(), {&out, &c, &a, &b},
                          [](std::array<char*, 4> p, std::array<int64_t, 4> s, int64_t n) {
    T* o = reinterpret_cast<T*>(p[0]);
    const MaskByte* m = reinterpret_cast<const MaskByte*>(p[1]);
    const T* x = reinterpret_cast<const T*>(p[2]);
    const T* y = reinterpret_cast<const T*>(p[3]);
    if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {
      for (int64_t i = 0; i < n; ++i) {
        const T u = x[i], v = y[i];  // both loads unconditional, so the select vectorises
        o[i] = m[i] ? u : v;
      }
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = m[i * s[1]] ? x[i * s[2]] : y[i * s[3]];
    }
  });
}

void check_bool(const Tensor& t, const char* op, const char* what) {
  COHORT_CHECK(t.defined(), ValueError, op, ": ", what, " is undefined");
  COHORT_CHECK(t.dtype() == DType::boolean, DTypeError, op, ": ", what, " must be bool, got ", dtype_name(t.dtype()),
               " (build it with a comparison such as gt(x, 0), or convert with .to(DType::boolean))");
}

}  // namespace

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_bool(cond, "where", "cond");
  COHORT_CHECK(a.defined() && b.defined(), ValueError, "where: an operand is undefined");
  const Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  const DType dt = promote_types(a.dtype(), b.dtype());
  const Tensor c = cond.detach().expand(shape);
  const Tensor x = a.detach().to(dt).detach().expand(shape);
  const Tensor y = b.detach().to(dt).detach().expand(shape);
  COHORT_CHECK(cond.device() == a.device() && a.device() == b.device(), DeviceError,
               "where: cond, a and b must be on one device, got ", cond.device().str(), ", ", a.device().str(), " and ",
               b.device().str());
  Tensor out = Tensor::empty(shape, TensorOptions(dt).with_device(a.device()));
  if (out.device().is_cuda()) {
    detail::cuda::where(out, c, x, y);
  } else {
    dispatch(dt, "where", [&](auto tag) {
      using T = decltype(tag);
      select_kernel<T>(out, c, x, y);
    });
  }
  if (!is_floating(dt)) return out;
  const Shape sa = a.shape(), sb = b.shape();
  const DType da = a.dtype(), db = b.dtype();
  return record(out, "where", {cond, a, b}, [=](const Tensor& g, const GradNeeds& n) {
    Tensor ga, gb;
    if (n[1] && is_floating(da)) ga = grad_for(masked_grad(g, c, dt, [](bool m) { return m; }), sa, da);
    if (n[2] && is_floating(db)) gb = grad_for(masked_grad(g, c, dt, [](bool m) { return !m; }), sb, db);
    return grads(Tensor(), ga, gb);
  });
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  COHORT_CHECK(x.defined(), ValueError, "masked_fill: the input tensor is undefined");
  check_bool(mask, "masked_fill", "mask");
  const Shape target = broadcast_shapes(mask.shape(), x.shape(), "masked_fill");
  COHORT_CHECK(target == x.shape(), ShapeError, "masked_fill: mask of shape ", mask.shape_str(),
               " cannot be broadcast to the input's shape ", x.shape_str());
  const Tensor m = mask.detach().expand(x.shape());
  COHORT_CHECK(mask.device() == x.device(), DeviceError, "masked_fill: the mask is on ", mask.device().str(),
               " but the input on ", x.device().str());
  const Tensor in = x.detach();
  Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  if (out.device().is_cuda()) {
    detail::cuda::binary(out, in, m, BinaryOp::masked_fill, value);
  } else {
    dispatch(x.dtype(), "masked_fill", [&](auto tag) {
      using T = decltype(tag);
      const T v = detail::cast<T>(value);
      detail::binary_kernel<T, T, MaskByte>(out, in, m, [v](T u, MaskByte f) { return f ? v : u; });
    });
  }
  if (!is_floating(x.dtype())) return out;
  const DType dt = x.dtype();
  return record(out, "masked_fill", {x}, [m, dt](const Tensor& g, const GradNeeds&) {
    return grads(masked_grad(g, m, dt, [](bool f) { return !f; }));
  });
}

Tensor clamp(const Tensor& x, double min, double max) {
  COHORT_CHECK(x.defined(), ValueError, "clamp: the input tensor is undefined");
  COHORT_CHECK(!(min > max), ValueError, "clamp: min ", min, " is greater than max ", max,
               "; pass the bounds in order (min <= max)");
  if (!is_floating(x.dtype())) {
    // A fractional (or NaN) bound makes the result floating, like PyTorch's type promotion.
    auto fractional = [](double v) { return std::isnan(v) || (std::isfinite(v) && std::trunc(v) != v); };
    if (fractional(min) || fractional(max)) return clamp(x.to(DType::f32), min, max);
  }
  const Tensor in = x.detach();
  Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  if (out.device().is_cuda()) {  // integer bounds saturate in the kernel, as below
    dispatch_numeric(x.dtype(), "clamp", [](auto) {});
    detail::cuda::unary(out, in, detail::cuda::UnaryOp::clamp, min, max);
  } else {
    dispatch_numeric(x.dtype(), "clamp", [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      A lo, hi;
      if constexpr (std::is_integral_v<A>) {
        // Integer bounds saturate to the type's range (an infinite bound leaves that side open).
        const double tlo = static_cast<double>(std::numeric_limits<A>::lowest());
        const double thi = static_cast<double>(std::numeric_limits<A>::max());
        lo = min <= tlo ? std::numeric_limits<A>::lowest() : (min >= thi ? std::numeric_limits<A>::max() : A(min));
        hi = max >= thi ? std::numeric_limits<A>::max() : (max <= tlo ? std::numeric_limits<A>::lowest() : A(max));
      } else {
        lo = static_cast<A>(min);
        hi = static_cast<A>(max);
      }
      // NaN fails both tests and passes through, as in PyTorch.
      detail::unary_kernel<T, T>(out, in, [lo, hi](T t) {
        const A v = A(t);
        return T(v < lo ? lo : (v > hi ? hi : v));
      });
    });
  }
  if (!is_floating(x.dtype())) return out;
  return record(out, "clamp", {x}, [in, min, max](const Tensor& g, const GradNeeds&) {
    // The gradient passes where min <= x <= max (boundaries included), like PyTorch.
    const Tensor gd = g.to(in.dtype()).expand(in.shape());
    Tensor gi = Tensor::empty(in.shape(), TensorOptions(in.dtype()).with_device(in.device()));
    if (gi.device().is_cuda()) {
      detail::cuda::unary_grad(gi, gd, in, detail::cuda::UnaryGradOp::clamp, min, max);
      return grads(gi);
    }
    dispatch_floating(in.dtype(), "clamp", [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      const A lo = static_cast<A>(min), hi = static_cast<A>(max);
      detail::binary_kernel<T, T, T>(gi, gd, in, [lo, hi](T gv, T t) {
        const A v = A(t);
        return (v >= lo && v <= hi) ? gv : T(0.0f);
      });
    });
    return grads(gi);
  });
}

}  // namespace cohort
