// Element types: f32, f64, bf16, f16, i32, i64, bool.
//
// bf16 and f16 are storage types: ops load them into float, compute, and round back (round to
// nearest even), which is what "f32 accumulation" means on every device.
#pragma once

#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>

#include "cohort/core/error.h"

namespace cohort {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, boolean };

struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) {  // NOLINT: implicit like a built-in float type
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = 0x7fc0;  // NaN stays NaN
    } else {
      u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
      bits = static_cast<uint16_t>(u >> 16);
    }
  }
  operator float() const {
    uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

struct Half {
  uint16_t bits = 0;
  Half() = default;
  Half(float f);  // NOLINT
  operator float() const;
};

size_t element_size(DType t);
const char* dtype_name(DType t);  // "f32", "bool", ...
std::ostream& operator<<(std::ostream& out, DType t);

bool is_floating(DType t);  // f32, f64, bf16, f16
bool is_integral(DType t);  // i32, i64 (not bool)

// The dtype a binary op computes in, following PyTorch's rules: bool < integers < floats, the
// wider within a category, and bf16 with f16 gives f32.
DType promote_types(DType a, DType b);

// The C++ type for a dtype, and back.
template <DType D> struct CppType;
template <> struct CppType<DType::f32> { using type = float; };
template <> struct CppType<DType::f64> { using type = double; };
template <> struct CppType<DType::bf16> { using type = BFloat16; };
template <> struct CppType<DType::f16> { using type = Half; };
template <> struct CppType<DType::i32> { using type = int32_t; };
template <> struct CppType<DType::i64> { using type = int64_t; };
template <> struct CppType<DType::boolean> { using type = bool; };

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<BFloat16>() { return DType::bf16; }
template <> constexpr DType dtype_of<Half>() { return DType::f16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<bool>() { return DType::boolean; }

// The type arithmetic on T is done in: float for the 16-bit floats, T otherwise.
template <class T> struct AccType { using type = T; };
template <> struct AccType<BFloat16> { using type = float; };
template <> struct AccType<Half> { using type = float; };
template <> struct AccType<bool> { using type = bool; };
template <class T> using acc_t = typename AccType<T>::type;

// dispatch(dtype, "op", [&](auto tag) { using T = decltype(tag); ... }) calls the lambda with a
// value of the C++ type for `dtype`. The _floating and _numeric variants reject other dtypes with
// a DTypeError naming the op.
template <class F>
decltype(auto) dispatch(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::bf16: return f(BFloat16{});
    case DType::f16: return f(Half{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    case DType::boolean: return f(bool{});
  }
  COHORT_THROW(DTypeError, op, ": unknown dtype ", static_cast<int>(t));
}

template <class F>
decltype(auto) dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::bf16: return f(BFloat16{});
    case DType::f16: return f(Half{});
    default: break;
  }
  COHORT_THROW(DTypeError, op, ": expected a floating dtype (f32, f64, bf16, f16), got ", dtype_name(t));
}

template <class F>
decltype(auto) dispatch_numeric(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::f32: return f(float{});
    case DType::f64: return f(double{});
    case DType::bf16: return f(BFloat16{});
    case DType::f16: return f(Half{});
    case DType::i32: return f(int32_t{});
    case DType::i64: return f(int64_t{});
    default: break;
  }
  COHORT_THROW(DTypeError, op, ": expected a numeric dtype (f32, f64, bf16, f16, i32, i64), got ",
               dtype_name(t));
}

}  // namespace cohort
