// exp, tanh, erf and sigmoid on float written so that a loop calling them vectorises (no libm call,
// no branches), for the activations on the training hot path (implementation-only header).
//
// glibc's expf/tanhf/erff cost 6/32/21 ns an element here, scalar; these vectorise inside
// unary_kernel's contiguous loop. Accuracy, measured against double-precision libm over dense
// sweeps (and at NaN, +-inf, overflow and subnormal results): exp within 1 ulp, tanh within 1.4 ulp
// (glibc's tanhf: 2.1), sigmoid within 2.5 ulp, erf within 4.5e-7 absolute (7.5 ulp, near |x| = 3.6).
// The double overloads call libm.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace cohort::detail {

inline float bits_to_float(int32_t i) {
  float f;
  std::memcpy(&f, &i, 4);
  return f;
}

inline int32_t float_to_bits(float f) {
  int32_t i;
  std::memcpy(&i, &f, 4);
  return i;
}

// 2^n as a float, for n in [-126, 127]. The shift is done unsigned: for a NaN input n is garbage
// (the result is NaN anyway), and a signed shift of it would be undefined.
inline float pow2(int32_t n) {
  return bits_to_float(static_cast<int32_t>(static_cast<uint32_t>(n + 127) << 23));
}

// cond ? a : b, on the bits, with both sides computed. With a plain ?: the compiler specialises
// the code after a clamp for the constant side, or moves a division into one branch; a floating
// op that may trap, left inside a branch, then stops the loop from vectorising.
inline float select_bits(bool cond, float a, float b) {
  const int32_t mask = -static_cast<int32_t>(cond);
  return bits_to_float((float_to_bits(a) & mask) | (float_to_bits(b) & ~mask));
}

// exp(x) = 2^n * exp(r) with n = round(x / ln 2) and |r| <= ln2 / 2; exp(r) by Cephes' expf
// polynomial. x is clamped to [-104, 89], just past where the result underflows to 0 and
// overflows to inf, and 2^n is applied as two halves so subnormal results come out right. NaN
// propagates through the arithmetic.
inline float vec_exp(float x) {
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  x = select_bits(x < -104.0f, -104.0f, x);
  x = select_bits(x > 89.0f, 89.0f, x);
  const float t = x * 1.44269504088896341f + kRound;
  const int32_t n = float_to_bits(t) - float_to_bits(kRound);
  const float fn = t - kRound;
  const float r = (x - fn * 0.693359375f) - fn * -2.12194440e-4f;  // ln 2 split hi + lo
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t n1 = n >> 1, n2 = n - n1;
  return y * pow2(n1) * pow2(n2);
}

// Cephes' tanhf: an odd polynomial below |x| = 0.625 (where 1 - 2 / (e^2x + 1) would cancel),
// that formula above. Both sides are computed and one is selected, to stay branch-free.
inline float vec_tanh(float x) {
  const float a = x < 0.0f ? -x : x;
  const float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * x + x;
  const float big = 1.0f - 2.0f / (vec_exp(2.0f * a) + 1.0f);
  return select_bits(a < 0.625f, small, x < 0.0f ? -big : big);
}

// erf as the rational approximation XLA and Eigen use for float (odd polynomial over even
// polynomial in x, on [-4, 4]; erf(+-4) is +-1 in float).
inline float vec_erf(float x) {
  x = select_bits(x < -4.0f, -4.0f, x);
  x = select_bits(x > 4.0f, 4.0f, x);
  const float z = x * x;
  float p = -2.72614225801306e-10f;
  p = p * z + 2.77068142495902e-08f;
  p = p * z + -2.10102402082508e-06f;
  p = p * z + -5.69250639462346e-05f;
  p = p * z + -7.34990630326855e-04f;
  p = p * z + -2.95459980854025e-03f;
  p = p * z + -1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * z + -2.13374055278905e-04f;
  q = q * z + -1.68282697438203e-03f;
  q = q * z + -7.37332916720468e-03f;
  q = q * z + -1.42647390514189e-02f;
  return x * (p / q);
}

inline float vec_sigmoid(float x) { return 1.0f / (1.0f + vec_exp(-x)); }

inline double vec_exp(double x) { return std::exp(x); }
inline double vec_tanh(double x) { return std::tanh(x); }
inline double vec_erf(double x) { return std::erf(x); }
inline double vec_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Sum of n values with 16 independent partial sums: vectorisable (a single running float sum is
// not, without -ffast-math) and more accurate.
template <class A, class F>
A lane_sum(int64_t n, const F& value) {
  constexpr int kLanes = 16;
  A part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) part[k] += value(i + k);
  A total = 0;
  for (; i < n; ++i) total += value(i);
  for (int k = 0; k < kLanes; ++k) total += part[k];
  return total;
}

}  // namespace cohort::detail
