// Gemm through oneDNN's matmul primitive (f32).
#include "gemm-impl.h"

#if COHORT_WITH_DNNL

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

}  // namespace

bool gemm_dnnl(const Gemm<float>& g) {
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
