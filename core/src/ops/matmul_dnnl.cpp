// Gemm through oneDNN's matmul primitive (f32).
#include "gemm-impl.h"

#if COHORT_WITH_DNNL

#include <algorithm>

#include "dnnl-impl.h"

namespace cohort::detail {

namespace {

// oneDNN reads a size-1 dim's stride too; give it one that keeps the layout plain.
void tidy_matrix_strides(int64_t rows, int64_t cols, int64_t& row_stride, int64_t& col_stride) {
  if (cols == 1) col_stride = 1;
  if (rows == 1) row_stride = col_stride == 1 ? cols : 1;
}

// The (batch, rows, cols) dims and strides of one operand. A broadcast operand (batch stride 0)
// becomes batch 1, which oneDNN's matmul broadcasts itself; stride 0 would send it to the slow
// reference implementation.
template <class T>
void operand_layout(const MatrixRef<T>& ref, int64_t batch, int64_t rows, int64_t cols, std::vector<int64_t>& dims,
                    std::vector<int64_t>& strides) {
  int64_t rs = ref.row_stride, cs = ref.col_stride;
  tidy_matrix_strides(rows, cols, rs, cs);
  const int64_t b = (ref.batch_stride == 0) ? 1 : batch;
  const int64_t bs = b == 1 ? rows * cols : ref.batch_stride;
  dims = {b, rows, cols};
  strides = {bs, rs, cs};
}

// oneDNN's fast gemm kernels need each matrix to be row- or column-major (one unit stride).
template <class T>
bool plain_matrix(const MatrixRef<T>& ref, int64_t rows, int64_t cols) {
  int64_t rs = ref.row_stride, cs = ref.col_stride;
  tidy_matrix_strides(rows, cols, rs, cs);
  return (cs == 1 && rs >= cols) || (rs == 1 && cs >= rows);
}

// One operand as dnnl_sgemm (row-major) sees it: 'N' when its rows are contiguous, 'T' when its
// columns are, with the leading dimension; false for any other layout.
template <class T>
bool sgemm_operand(const MatrixRef<T>& ref, int64_t rows, int64_t cols, char* trans, int64_t* ld) {
  int64_t rs = ref.row_stride, cs = ref.col_stride;
  tidy_matrix_strides(rows, cols, rs, cs);
  if (cs == 1 && rs >= cols) {
    *trans = 'N';
    *ld = std::max<int64_t>(rs, 1);
  } else if (rs == 1 && cs >= rows) {
    *trans = 'T';
    *ld = std::max<int64_t>(cs, 1);
  } else {
    return false;
  }
  return true;
}

// A single product without bias through dnnl_sgemm, oneDNN's BLAS-like call: on one core it ran
// 5-10% faster than the matmul primitive on the training products (docs/benchmarks.md, "GEMM
// backends"), and it accumulates (beta = 1) where the primitive cannot.
bool sgemm_dnnl(const Gemm<float>& g) {
  char ta, tb, tc;
  int64_t lda, ldb, ldc;
  if (g.batch != 1 || g.bias != nullptr || !sgemm_operand(g.a, g.m, g.k, &ta, &lda) ||
      !sgemm_operand(g.b, g.k, g.n, &tb, &ldb) ||
      !sgemm_operand(MatrixRef<const float>{g.c.data, g.c.batch_stride, g.c.row_stride, g.c.col_stride}, g.m, g.n,
                     &tc, &ldc) ||
      tc != 'N') {
    return false;
  }
  const dnnl_status_t status = dnnl_sgemm(ta, tb, g.m, g.n, g.k, 1.0f, g.a.data, lda, g.b.data, ldb,
                                          g.accumulate ? 1.0f : 0.0f, g.c.data, ldc);
  COHORT_CHECK(status == dnnl_success, ValueError, "matmul: oneDNN's sgemm failed with status ", int(status),
               " for a (", g.m, ", ", g.k, ") @ (", g.k, ", ", g.n, ") product");
  return true;
}

}  // namespace

bool dnnl_has_avx512() {
  static const bool has = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    return (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;
  }();
  return has;
}

bool gemm_dnnl(const Gemm<float>& g) {
  if (sgemm_dnnl(g)) return true;
  if (g.accumulate || !plain_matrix(g.a, g.m, g.k) || !plain_matrix(g.b, g.k, g.n) || !plain_matrix(g.c, g.m, g.n) ||
      (g.c.batch_stride == 0 && g.batch > 1)) {
    return false;
  }
  std::vector<int64_t> a_dims, a_strides, b_dims, b_strides, c_dims, c_strides;
  operand_layout(g.a, g.batch, g.m, g.k, a_dims, a_strides);
  operand_layout(g.b, g.batch, g.k, g.n, b_dims, b_strides);
  operand_layout(g.c, g.batch, g.m, g.n, c_dims, c_strides);
  const bool has_bias = g.bias != nullptr;
  const std::string key =
      dnnl_key("matmul_f32", a_dims, a_strides, b_dims, b_strides, c_dims, c_strides, has_bias ? "bias" : "nobias");
  const dnnl::memory::desc a_md = dnnl_f32_desc(a_dims, a_strides);
  const dnnl::memory::desc b_md = dnnl_f32_desc(b_dims, b_strides);
  const dnnl::memory::desc c_md = dnnl_f32_desc(c_dims, c_strides);
  const dnnl::memory::desc bias_md = dnnl_f32_desc({1, 1, g.n}, {g.n, g.n, 1});
  dnnl_call("matmul", [&] {
    DnnlPrimitive p = cached_primitive(key, [&] {
      const dnnl::matmul::desc desc =
          has_bias ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md) : dnnl::matmul::desc(a_md, b_md, c_md);
      return make_dnnl_primitive<dnnl::matmul::primitive_desc, dnnl::matmul>(
          dnnl::matmul::primitive_desc(desc, dnnl_attr(), dnnl_engine()));
    });
    std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, dnnl_memory(a_md, g.a.data)},
                                               {DNNL_ARG_WEIGHTS, dnnl_memory(b_md, g.b.data)},
                                               {DNNL_ARG_DST, dnnl_memory(c_md, g.c.data)}};
    if (has_bias) args.emplace(DNNL_ARG_BIAS, dnnl_memory(bias_md, g.bias));
    dnnl_execute(p, std::move(args));
  });
  return true;
}

}  // namespace cohort::detail

#endif  // COHORT_WITH_DNNL
