// Elementwise ops on CUDA tensors: unary ops and their gradients, binary arithmetic, comparisons,
// masks, where, copies with dtype conversion, fill. See elementwise-ops-impl.h for the contract.
//
// One kernel per (family, dtype) with the op code as a kernel argument: every thread of a launch
// takes the same branch, which costs nothing next to the memory traffic these ops are bound by,
// and it keeps the number of instantiations (and the build time on CI's two cores) small. The
// formulas are the CPU ones (unary.cpp, arithmetic.cpp, pow_minmax.cpp, select.cpp) in the same
// computing type; libm's erf/tanh/exp stand in for the CPU's vectorised approximations.
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "../ops/int_pow-impl.h"
#include "elementwise-ops-impl.h"
#include "device_math-impl.cuh"
#include "loops-impl.cuh"

namespace cohort::detail::cuda {

namespace {

// ---- device math on the computing type (float or double) ----

constexpr double kSqrt1_2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluCoeff = 0.044715;

// ---- unary ----

template <class T>
struct UnaryCompute {
  UnaryOp op;
  device_acc_t<T> a, b;

  __device__ __forceinline__ T operator()(T in) const {
    using A = device_acc_t<T>;
    const A v = to_acc(in);
    A r = v;
    if constexpr (std::is_floating_point_v<A>) {
      switch (op) {
        case UnaryOp::gelu_erf: r = A(0.5) * v * (A(1) + d_erf(v * A(kSqrt1_2))); break;
        case UnaryOp::gelu_tanh:
          r = A(0.5) * v * (A(1) + d_tanh(A(kSqrt2OverPi) * (v + A(kGeluCoeff) * v * v * v)));
          break;
        case UnaryOp::tanh: r = d_tanh(v); break;
        case UnaryOp::sigmoid: r = A(1) / (A(1) + d_exp(-v)); break;
        case UnaryOp::exp: r = d_exp(v); break;
        case UnaryOp::log: r = d_log(v); break;
        case UnaryOp::sqrt: r = d_sqrt(v); break;
        case UnaryOp::pow_scalar: r = a == A(2) ? v * v : d_pow(v, a); break;
        default: break;
      }
    } else {
      if (op == UnaryOp::pow_int) r = int_pow<A>(v, a);
    }
    switch (op) {
      case UnaryOp::abs: r = v < A(0) ? A(-v) : v; break;
      case UnaryOp::relu: r = v < A(0) ? A(0) : v; break;  // keeps NaN
      case UnaryOp::square: r = v * v; break;
      case UnaryOp::clamp: r = v < a ? a : (v > b ? b : v); break;  // NaN passes
      default: break;
    }
    return from_acc<T>(r);
  }
};

template <class T>
struct LogicalNotOf {
  __device__ __forceinline__ bool operator()(T v) const { return to_acc(v) == device_acc_t<T>(0); }
};

// ---- unary gradients: out = g * f'(s) ----

template <class T>
struct UnaryGradCompute {
  UnaryGradOp op;
  device_acc_t<T> a, b;

  __device__ __forceinline__ T operator()(T gv, T sv) const {
    using A = device_acc_t<T>;
    const A g = to_acc(gv), s = to_acc(sv);
    A r = A(0);
    switch (op) {
      case UnaryGradOp::abs: r = s > A(0) ? g : (s < A(0) ? -g : A(0)); break;
      case UnaryGradOp::relu: r = s <= A(0) ? A(0) : g; break;  // s = y
      case UnaryGradOp::gelu_erf: {
        const A cdf = A(0.5) * (A(1) + d_erf(s * A(kSqrt1_2)));
        const A pdf = A(kInvSqrt2Pi) * d_exp(A(-0.5) * s * s);
        r = g * (cdf + s * pdf);
        break;
      }
      case UnaryGradOp::gelu_tanh: {
        const A t = d_tanh(A(kSqrt2OverPi) * (s + A(kGeluCoeff) * s * s * s));
        const A du = A(kSqrt2OverPi) * (A(1) + A(3 * kGeluCoeff) * s * s);
        r = g * (A(0.5) * (A(1) + t) + A(0.5) * s * (A(1) - t * t) * du);
        break;
      }
      case UnaryGradOp::tanh: r = g * (A(1) - s * s); break;     // s = y
      case UnaryGradOp::sigmoid: r = g * s * (A(1) - s); break;  // s = y
      case UnaryGradOp::exp: r = g * s; break;                   // s = y
      case UnaryGradOp::log: r = g / s; break;
      case UnaryGradOp::sqrt: r = g / (A(2) * s); break;         // s = y
      case UnaryGradOp::square: r = A(2) * s * g; break;
      case UnaryGradOp::pow_scalar:
        r = a == A(2) ? A(2) * s * g : (a == A(0) ? A(0) : g * a * d_pow(s, a - A(1)));
        break;
      case UnaryGradOp::clamp: r = (s >= a && s <= b) ? g : A(0); break;
    }
    return from_acc<T>(r);
  }
};

// ---- binary ----

template <class T>
struct BinaryCompute {
  BinaryOp op;
  device_acc_t<T> alpha;

  __device__ __forceinline__ T operator()(T xv, T yv) const {
    using A = device_acc_t<T>;
    const A x = to_acc(xv), y = to_acc(yv);
    A r = A(0);
    switch (op) {
      case BinaryOp::add: r = alpha == A(1) ? A(x + y) : A(x + alpha * y); break;
      case BinaryOp::sub: r = x - y; break;
      case BinaryOp::mul: r = x * y; break;
      case BinaryOp::div: r = x / y; break;
      case BinaryOp::pow:
        if constexpr (std::is_floating_point_v<A>) {
          r = d_pow(x, y);
        } else if constexpr (!std::is_same_v<A, bool>) {
          r = int_pow<A>(x, y);
        }
        break;
      case BinaryOp::maximum: r = (x > y || x != x) ? x : y; break;
      case BinaryOp::minimum: r = (x < y || x != x) ? x : y; break;
      default: break;
    }
    return from_acc<T>(r);
  }
};

template <class T>
struct CompareCompute {
  BinaryOp op;
  __device__ __forceinline__ bool operator()(T xv, T yv) const {
    const auto x = to_acc(xv), y = to_acc(yv);
    switch (op) {
      case BinaryOp::eq: return x == y;
      case BinaryOp::ne: return x != y;
      case BinaryOp::lt: return x < y;
      case BinaryOp::le: return x <= y;
      case BinaryOp::gt: return x > y;
      case BinaryOp::ge: return x >= y;
      default: return false;
    }
  }
};

template <class T>
struct MaskCompute {
  BinaryOp op;
  T fill;
  __device__ __forceinline__ T operator()(T x, bool m) const {
    switch (op) {
      case BinaryOp::masked_fill: return m ? fill : x;
      case BinaryOp::mask_keep: return m ? x : from_acc<T>(device_acc_t<T>(0));
      default: return m ? from_acc<T>(device_acc_t<T>(0)) : x;  // mask_drop
    }
  }
};

// ---- ternary gradients of binary ops ----

template <class T>
struct TernaryGradCompute {
  TernaryGradOp op;
  __device__ __forceinline__ T operator()(T gv, T xv, T yv) const {
    using A = device_acc_t<T>;
    const A g = to_acc(gv), x = to_acc(xv), y = to_acc(yv);
    A r = A(0);
    switch (op) {
      case TernaryGradOp::pow_base: r = y == A(0) ? A(0) : g * y * d_pow(x, y - A(1)); break;
      case TernaryGradOp::pow_exponent: r = (x == A(0) && y >= A(0)) ? A(0) : g * d_pow(x, y) * d_log(x); break;
      case TernaryGradOp::max_first: r = x == y ? A(0.5) * g : (x < y ? A(0) : g); break;
      case TernaryGradOp::max_second: r = x == y ? A(0.5) * g : (x > y ? A(0) : g); break;
      case TernaryGradOp::min_first: r = x == y ? A(0.5) * g : (x > y ? A(0) : g); break;
      case TernaryGradOp::min_second: r = x == y ? A(0.5) * g : (x < y ? A(0) : g); break;
    }
    return from_acc<T>(r);
  }
};

template <class T>
struct SelectCompute {
  __device__ __forceinline__ T operator()(bool c, T x, T y) const { return c ? x : y; }
};

template <class To, class Ti>
struct ConvertCompute {
  __device__ __forceinline__ To operator()(Ti v) const { return convert<To, Ti>(v); }
};

template <class T>
struct FillFn {
  T value;
  __device__ __forceinline__ size_t elem_size(int) const { return sizeof(T); }
  __device__ __forceinline__ void operator()(char* const (&p)[1]) const { *reinterpret_cast<T*>(p[0]) = value; }
};

// A double on the host as the device computing type of T. Integers saturate to their range (an
// infinite clamp bound leaves that side open, as on the CPU); NaN becomes 0 for them.
template <class T>
device_acc_t<T> host_acc(double v) {
  using A = device_acc_t<T>;
  if constexpr (std::is_integral_v<A> && !std::is_same_v<A, bool>) {
    if (v != v) return A(0);
    if (v <= static_cast<double>(std::numeric_limits<A>::lowest())) return std::numeric_limits<A>::lowest();
    if (v >= static_cast<double>(std::numeric_limits<A>::max())) return std::numeric_limits<A>::max();
  }
  return static_cast<A>(v);
}

// A double on the host as a device element of T, through the CPU's conversion rules.
template <class T>
T host_value(double v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat16_raw raw;
    raw.x = BFloat16(static_cast<float>(v)).bits;
    return __nv_bfloat16(raw);
  } else if constexpr (std::is_same_v<T, __half>) {
    __half_raw raw;
    raw.x = Half(static_cast<float>(v)).bits;
    return __half(raw);
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0.0;
  } else {
    return static_cast<T>(v);
  }
}

}  // namespace

void unary(const Tensor& out, const Tensor& in, UnaryOp op, double a, double b) {
  if (op == UnaryOp::logical_not) {
    dispatch_device(in.dtype(), "logical_not", [&](auto tag) {
      using T = decltype(tag);
      unary_loop<bool, T>(out, in, LogicalNotOf<T>{}, "logical_not");
    });
    return;
  }
  dispatch_device_numeric(in.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    unary_loop<T, T>(out, in, UnaryCompute<T>{op, host_acc<T>(a), host_acc<T>(b)}, "unary");
  });
}

void unary_grad(const Tensor& out, const Tensor& g, const Tensor& s, UnaryGradOp op, double a, double b) {
  dispatch_device_floating(s.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    binary_loop<T, T, T>(out, g, s, UnaryGradCompute<T>{op, host_acc<T>(a), host_acc<T>(b)}, "backward");
  });
}

void binary(const Tensor& out, const Tensor& x, const Tensor& y, BinaryOp op, double alpha) {
  switch (op) {
    case BinaryOp::eq:
    case BinaryOp::ne:
    case BinaryOp::lt:
    case BinaryOp::le:
    case BinaryOp::gt:
    case BinaryOp::ge:
      dispatch_device(x.dtype(), "compare", [&](auto tag) {
        using T = decltype(tag);
        binary_loop<bool, T, T>(out, x, y, CompareCompute<T>{op}, "compare");
      });
      return;
    case BinaryOp::masked_fill:
    case BinaryOp::mask_keep:
    case BinaryOp::mask_drop:
      dispatch_device(x.dtype(), "masked_fill", [&](auto tag) {
        using T = decltype(tag);
        binary_loop<T, T, bool>(out, x, y, MaskCompute<T>{op, host_value<T>(alpha)}, "masked_fill");
      });
      return;
    case BinaryOp::maximum:
    case BinaryOp::minimum:
      dispatch_device(x.dtype(), "maximum", [&](auto tag) {
        using T = decltype(tag);
        binary_loop<T, T, T>(out, x, y, BinaryCompute<T>{op, host_acc<T>(alpha)}, "maximum");
      });
      return;
    default:
      dispatch_device_numeric(x.dtype(), "binary", [&](auto tag) {
        using T = decltype(tag);
        binary_loop<T, T, T>(out, x, y, BinaryCompute<T>{op, host_acc<T>(alpha)}, "binary");
      });
  }
}

void ternary_grad(const Tensor& out, const Tensor& g, const Tensor& x, const Tensor& y, TernaryGradOp op) {
  dispatch_device_floating(x.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    ternary_loop<T, T, T, T>(out, g, x, y, TernaryGradCompute<T>{op}, "backward");
  });
}

void where(const Tensor& out, const Tensor& c, const Tensor& x, const Tensor& y) {
  dispatch_device(out.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    ternary_loop<T, bool, T, T>(out, c, x, y, SelectCompute<T>{}, "where");
  });
}

void copy(const Tensor& dst, const Tensor& src) {
  dispatch_device(dst.dtype(), "copy", [&](auto out_tag) {
    using To = decltype(out_tag);
    dispatch_device(src.dtype(), "copy", [&](auto in_tag) {
      using Ti = decltype(in_tag);
      unary_loop<To, Ti>(dst, src, ConvertCompute<To, Ti>{}, "copy");
    });
  });
}

void fill(const Tensor& t, double value) {
  dispatch_device(t.dtype(), "fill_", [&](auto tag) {
    using T = decltype(tag);
    const auto plan = make_elementwise_plan<1>(t.shape(), {&t}, "fill_");
    DeviceGuard guard(t.device().index);
    launch_elementwise(plan, stream_of(t), FillFn<T>{host_value<T>(value)});
  });
}

}  // namespace cohort::detail::cuda
