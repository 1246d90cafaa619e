// f32 Gemm through a CBLAS library (OpenBLAS on Debian), for the shapes where oneDNN's gemm is
// slow, and for every product when oneDNN is off. See gemm() in gemm-impl.h for when it is chosen.
#include "gemm-impl.h"

#if COHORT_WITH_BLAS

#include <cblas.h>

#include <algorithm>
#include <climits>

namespace cohort::detail {

namespace {

// One operand as CBLAS sees it in row-major order: not transposed when its rows are contiguous,
// transposed when its columns are; false when neither (a strided view), or a leading dimension
// does not fit an int.
template <class T>
bool blas_operand(const MatrixRef<T>& ref, int64_t rows, int64_t cols, CBLAS_TRANSPOSE* trans, int64_t* ld) {
  int64_t rs = ref.row_stride, cs = ref.col_stride;
  if (cols == 1) cs = 1;  // a size-1 dim's stride is arbitrary
  if (rows == 1) rs = cs == 1 ? cols : 1;
  if (cs == 1 && rs >= cols) {
    *trans = CblasNoTrans;
    *ld = std::max<int64_t>(rs, 1);
  } else if (rs == 1 && cs >= rows) {
    *trans = CblasTrans;
    *ld = std::max<int64_t>(cs, 1);
  } else {
    return false;
  }
  return *ld <= INT_MAX;
}

template <class T>
bool gemm_blas_impl(const Gemm<T>& g) {
  if (g.bias != nullptr || g.m > INT_MAX || g.n > INT_MAX || g.k > INT_MAX) return false;
  CBLAS_TRANSPOSE ta, tb, tc;
  int64_t lda, ldb, ldc;
  if (!blas_operand(g.a, g.m, g.k, &ta, &lda) || !blas_operand(g.b, g.k, g.n, &tb, &ldb) ||
      !blas_operand(MatrixRef<const T>{g.c.data, g.c.batch_stride, g.c.row_stride, g.c.col_stride}, g.m, g.n, &tc,
                    &ldc) ||
      tc != CblasNoTrans) {
    return false;
  }
  const T beta = g.accumulate ? T(1) : T(0);
  for (int64_t i = 0; i < g.batch; ++i) {
    const T* a = g.a.data + i * g.a.batch_stride;
    const T* b = g.b.data + i * g.b.batch_stride;
    T* c = g.c.data + i * g.c.batch_stride;
    const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
                static_cast<int>(ldc));
  }
  return true;
}

}  // namespace

bool gemm_blas(const Gemm<float>& g) { return gemm_blas_impl(g); }

}  // namespace cohort::detail

#endif  // COHORT_WITH_BLAS
