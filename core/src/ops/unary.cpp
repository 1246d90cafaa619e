// Unary elementwise ops (abs, relu, gelu, tanh, sigmoid, exp, log, sqrt, square) and their
// gradients.
//
// Forward and backward are each one pass over memory: the forward maps x to y, and the backward
// is a single fused kernel d_in = f(g, s), where s is whichever of x or y the derivative is
// cheapest in (y for tanh, sigmoid, exp and sqrt; x for the others). bf16/f16 compute in float,
// and float exp/tanh/erf/sigmoid come from vec-math-impl.h so that these loops vectorise.
#include <cmath>
#include <cstdlib>
#include <string>

#include "cohort/core/autograd.h"
#include "../cuda/elementwise-ops-impl.h"
#include "cohort/core/ops/elementwise.h"
#include "loops-impl.h"
#include "vec-math-impl.h"

namespace cohort {

namespace {

constexpr double kSqrt1_2 = 0.70710678118654752440;      // 1 / sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1 / sqrt(2 pi)
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2 / pi)
constexpr double kGeluCoeff = 0.044715;                  // of the tanh approximation

enum class Domain { floating, numeric };

using detail::cuda::UnaryGradOp;
using detail::cuda::UnaryOp;

// out = f(x) elementwise. f is a generic lambda on the accumulation type (float for bf16/f16); on
// a CUDA device the kernel for `code` computes the same.
template <Domain D, class F>
Tensor map_unary(const Tensor& x, const char* op, UnaryOp code, const F& f) {
  COHORT_CHECK(x.defined(), ValueError, op, ": the input tensor is undefined");
  const Tensor in = x.detach();
  Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  if (x.device().is_cuda()) {
    if constexpr (D == Domain::floating) {  // the same dtype check as the CPU's dispatch
      dispatch_floating(x.dtype(), op, [](auto) {});
    } else {
      dispatch_numeric(x.dtype(), op, [](auto) {});
    }
    detail::cuda::unary(out, in, code);
    return out;
  }
  auto body = [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::unary_kernel<T, T>(out, in, [&f](T v) { return T(f(A(v))); });
  };
  if constexpr (D == Domain::floating) {
    dispatch_floating(x.dtype(), op, body);
  } else {
    dispatch_numeric(x.dtype(), op, body);
  }
  return out;
}

// The input gradient f(g, s) in one pass; s (the saved x or y) has the input's shape and dtype.
template <class F>
Tensor map_grad(const Tensor& g, const Tensor& saved, UnaryGradOp code, const F& f) {
  const Tensor gd = g.to(saved.dtype()).expand(saved.shape());
  Tensor out = Tensor::empty(saved.shape(), TensorOptions(saved.dtype()).with_device(saved.device()));
  if (saved.device().is_cuda()) {
    detail::cuda::unary_grad(out, gd, saved, code);
    return out;
  }
  dispatch_floating(saved.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    detail::binary_kernel<T, T, T>(out, gd, saved, [&f](T gv, T sv) { return T(f(A(gv), A(sv))); });
  });
  return out;
}

// Records `out = op(x)` with the gradient map_grad(g, saved, df). Integer results have no history.
template <class F>
Tensor record_unary(const Tensor& out, const char* op, const Tensor& x, const Tensor& saved, UnaryGradOp code,
                    const F& df) {
  if (!is_floating(x.dtype())) return out;
  return record(out, op, {x}, [saved = saved.detach(), code, df](const Tensor& g, const GradNeeds&) {
    return grads(map_grad(g, saved, code, df));
  });
}

}  // namespace

Tensor abs(const Tensor& x) {
  Tensor y = map_unary<Domain::numeric>(x, "abs", UnaryOp::abs, [](auto v) { return std::abs(v); });
  return record_unary(y, "abs", x, x, UnaryGradOp::abs, [](auto g, auto v) {
    using A = decltype(v);
    return v > A(0) ? g : (v < A(0) ? -g : A(0));
  });
}

Tensor relu(const Tensor& x) {
  // `v < 0 ? 0 : v` keeps NaN (as PyTorch does) and compiles to a vector max/blend.
  Tensor y = map_unary<Domain::numeric>(x, "relu", UnaryOp::relu, [](auto v) {
    using A = decltype(v);
    return v < A(0) ? A(0) : v;
  });
  // PyTorch's threshold_backward: the gradient passes where the result is not <= 0.
  return record_unary(y, "relu", x, y, UnaryGradOp::relu, [](auto g, auto yv) {
    using A = decltype(yv);
    return yv <= A(0) ? A(0) : g;
  });
}

Tensor gelu(const Tensor& x, const std::string& approximate) {
  if (approximate == "none") {
    // y = x * Phi(x), Phi the standard normal CDF; dy/dx = Phi(x) + x * phi(x).
    Tensor y = map_unary<Domain::floating>(x, "gelu", UnaryOp::gelu_erf, [](auto v) {
      using A = decltype(v);
      return A(0.5) * v * (A(1) + detail::vec_erf(v * A(kSqrt1_2)));
    });
    return record_unary(y, "gelu", x, x, UnaryGradOp::gelu_erf, [](auto g, auto v) {
      using A = decltype(v);
      const A cdf = A(0.5) * (A(1) + detail::vec_erf(v * A(kSqrt1_2)));
      const A pdf = A(kInvSqrt2Pi) * detail::vec_exp(A(-0.5) * v * v);
      return g * (cdf + v * pdf);
    });
  }
  if (approximate == "tanh") {
    // y = x/2 * (1 + tanh(u)), u = sqrt(2/pi) * (x + c x^3);
    // dy/dx = (1 + t)/2 + x/2 * (1 - t^2) * sqrt(2/pi) * (1 + 3 c x^2), t = tanh(u).
    Tensor y = map_unary<Domain::floating>(x, "gelu", UnaryOp::gelu_tanh, [](auto v) {
      using A = decltype(v);
      return A(0.5) * v * (A(1) + detail::vec_tanh(A(kSqrt2OverPi) * (v + A(kGeluCoeff) * v * v * v)));
    });
    return record_unary(y, "gelu", x, x, UnaryGradOp::gelu_tanh, [](auto g, auto v) {
      using A = decltype(v);
      const A t = detail::vec_tanh(A(kSqrt2OverPi) * (v + A(kGeluCoeff) * v * v * v));
      const A du = A(kSqrt2OverPi) * (A(1) + A(3 * kGeluCoeff) * v * v);
      return g * (A(0.5) * (A(1) + t) + A(0.5) * v * (A(1) - t * t) * du);
    });
  }
  COHORT_THROW(ValueError, "gelu: approximate must be \"none\" or \"tanh\", got \"", approximate, "\"");
}

Tensor tanh(const Tensor& x) {
  Tensor y = map_unary<Domain::floating>(x, "tanh", UnaryOp::tanh, [](auto v) { return detail::vec_tanh(v); });
  return record_unary(y, "tanh", x, y, UnaryGradOp::tanh, [](auto g, auto yv) {
    using A = decltype(yv);
    return g * (A(1) - yv * yv);
  });
}

Tensor sigmoid(const Tensor& x) {
  // exp(-v) overflows to inf for very negative v, giving exactly 0: no special case needed.
  Tensor y =
      map_unary<Domain::floating>(x, "sigmoid", UnaryOp::sigmoid, [](auto v) { return detail::vec_sigmoid(v); });
  return record_unary(y, "sigmoid", x, y, UnaryGradOp::sigmoid, [](auto g, auto yv) {
    using A = decltype(yv);
    return g * yv * (A(1) - yv);
  });
}

Tensor exp(const Tensor& x) {
  Tensor y = map_unary<Domain::floating>(x, "exp", UnaryOp::exp, [](auto v) { return detail::vec_exp(v); });
  return record_unary(y, "exp", x, y, UnaryGradOp::exp, [](auto g, auto yv) { return g * yv; });
}

Tensor log(const Tensor& x) {
  Tensor y = map_unary<Domain::floating>(x, "log", UnaryOp::log, [](auto v) { return std::log(v); });
  return record_unary(y, "log", x, x, UnaryGradOp::log, [](auto g, auto v) { return g / v; });
}

Tensor sqrt(const Tensor& x) {
  Tensor y = map_unary<Domain::floating>(x, "sqrt", UnaryOp::sqrt, [](auto v) { return std::sqrt(v); });
  return record_unary(y, "sqrt", x, y, UnaryGradOp::sqrt, [](auto g, auto yv) {
    using A = decltype(yv);
    return g / (A(2) * yv);
  });
}

Tensor square(const Tensor& x) {
  Tensor y = map_unary<Domain::numeric>(x, "square", UnaryOp::square, [](auto v) { return v * v; });
  return record_unary(y, "square", x, x, UnaryGradOp::square, [](auto g, auto v) {
    using A = decltype(v);
    return A(2) * v * g;
  });
}

}  // namespace cohort
