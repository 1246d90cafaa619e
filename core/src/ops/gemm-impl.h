// Batched strided matrix products, the one kernel matmul, bmm, linear and the fallback conv share
// (implementation-only header).
//
// A Gemm describes c[i] = a[i] @ b[i] (+ bias) for i in [0, batch): every operand is a strided
// view (element (i, r, c) of a lives at a.data + i*a.batch_stride + r*a.row_stride +
// c*a.col_stride), so transposes and broadcasts (batch_stride 0) need no copies.
//
// gemm() picks the backend:
// - f32: oneDNN's matmul, except, on CPUs where oneDNN runs its AVX2 code (no AVX-512), for one
//   family of shapes where a CBLAS library (OpenBLAS) is faster: B not transposed and a depth at
//   least as large as the output's sides (K >= max(M, N)), the input gradient x @ W of a linear
//   layer with a small batch and the weight gradients of narrow layers. There oneDNN 2.6 on AVX2
//   takes its "no-copy" kernels, which ran at 37-66 GFLOP/s against OpenBLAS's 67-82 on one core;
//   with AVX-512 oneDNN is the faster library on every training product (150-175 GFLOP/s against
//   OpenBLAS's 120-148; docs/benchmarks.md, "GEMM backends"). Without oneDNN, CBLAS for every
//   plain product.
// - f64: cohort's own loops, whose result does not depend on the thread count (OpenBLAS's dgemm
//   does; Matmul.F64ResultDoesNotDependOnThreadCount).
// - otherwise, and for strided views neither library takes: cohort's own cache-blocked loops
//   (matmul_fallback.cpp).
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

#if COHORT_WITH_BLAS
// cblas_sgemm, per batch. Needs no bias, row-major C and each of A and B with a unit stride
// in one dim; returns false (doing nothing) otherwise.
bool gemm_blas(const Gemm<float>& g);
#endif

#if COHORT_WITH_DNNL
// oneDNN's matmul primitive. Needs accumulate == false; returns false (doing nothing) when the
// product cannot be described to oneDNN without a copy, so the caller falls back.
bool gemm_dnnl(const Gemm<float>& g);
// Whether oneDNN runs AVX-512 (or better) code on this CPU (asked once).
bool dnnl_has_avx512();
#endif

// The shapes oneDNN's f32 gemm handles slowly (see above): one product (batched ones, the
// attention's, stay with oneDNN's single batched call), B's rows contiguous (not a transposed
// view) and K >= max(M, N).
template <class T>
bool deep_untransposed_b(const Gemm<T>& g) {
  return g.batch == 1 && (g.b.col_stride == 1 || g.n == 1) && g.k >= g.m && g.k >= g.n;
}

inline void gemm(const Gemm<float>& g) {
  [[maybe_unused]] const bool empty = g.batch == 0 || g.m == 0 || g.n == 0 || g.k == 0;
#if COHORT_WITH_BLAS && COHORT_WITH_DNNL
  if (!empty && g.bias == nullptr && deep_untransposed_b(g) && !dnnl_has_avx512() && gemm_blas(g)) return;
#elif COHORT_WITH_BLAS
  if (!empty && gemm_blas(g)) return;
#endif
#if COHORT_WITH_DNNL
  if (!g.accumulate && !empty && gemm_dnnl(g)) return;
#endif
  gemm_fallback(g);
}

inline void gemm(const Gemm<double>& g) { gemm_fallback(g); }

}  // namespace cohort::detail
