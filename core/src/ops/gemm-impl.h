// Batched strided matrix products, the one kernel matmul, bmm, linear and the fallback conv share
// (implementation-only header).
//
// A Gemm describes c[i] = a[i] @ b[i] (+ bias) for i in [0, batch): every operand is a strided
// view (element (i, r, c) of a lives at a.data + i*a.batch_stride + r*a.row_stride +
// c*a.col_stride), so transposes and broadcasts (batch_stride 0) need no copies.
//
// gemm() picks the backend: oneDNN's matmul for f32 when cohort is built with oneDNN, cohort's
// own cache-blocked loops (matmul_fallback.cpp) for f64 and for builds without oneDNN.
#pragma once

#include <cstdint>

#include "cohort/config.h"

namespace cohort::detail {

template <class T>
struct MatrixRef {
  T* data = nullptr;
  int64_t batch_stride = 0, row_stride = 0, col_stride = 0;  // in elements
};

template <class T>
struct Gemm {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  MatrixRef<const T> a;     // (batch, m, k)
  MatrixRef<const T> b;     // (batch, k, n)
  MatrixRef<T> c;           // (batch, m, n), must not overlap a or b
  const T* bias = nullptr;  // (n), added to every row; may be null
  bool accumulate = false;  // c += a @ b instead of c = a @ b
};

// cohort's blocked, OpenMP-parallel GEMM (any strides, any batch strides).
void gemm_fallback(const Gemm<float>& g);
void gemm_fallback(const Gemm<double>& g);

#if COHORT_WITH_DNNL
// oneDNN's matmul primitive. Needs accumulate == false; returns false (doing nothing) when the
// product cannot be described to oneDNN without a copy, so the caller falls back.
bool gemm_dnnl(const Gemm<float>& g);
#endif

inline void gemm(const Gemm<float>& g) {
#if COHORT_WITH_DNNL
  const bool empty = g.batch == 0 || g.m == 0 || g.n == 0 || g.k == 0;
  if (!g.accumulate && !empty && gemm_dnnl(g)) return;
#endif
  gemm_fallback(g);
}

inline void gemm(const Gemm<double>& g) { gemm_fallback(g); }

}  // namespace cohort::detail
