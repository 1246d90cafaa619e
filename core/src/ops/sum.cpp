// sum and mean (on a CUDA tensor through cuda/reduce.cu, which also sums floats in double).
#include <cmath>

#include "../cuda/reduce-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/reduction.h"
#include "cohort/core/parallel_for.h"
#include "reduce-impl.h"

namespace cohort {

namespace {

// Sum of n contiguous values with 16 independent partial sums (vectorisable, and more accurate than
// one running sum).
template <class T, class A>
A row_sum(const T* x, int64_t n) {
  constexpr int kLanes = 16;
  A part[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) part[k] += static_cast<A>(x[i + k]);
  A total = 0;
  for (; i < n; ++i) total += static_cast<A>(x[i]);
  for (int k = 0; k < kLanes; ++k) total += part[k];
  return total;
}

// The CPU loops: out (outer, inner) = scale * sum over R of the contiguous (outer, R, inner) data.
void sum_cpu(const Tensor& out, const Tensor& data, const detail::ReducePlan& p, double scale, const char* op) {
  dispatch_numeric(out.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    // Floats accumulate in double: a running float sum of a million values loses about three
    // digits, and the sums here are bound by memory bandwidth, not by the adds.
    using A = std::conditional_t<std::is_same_v<T, int64_t>, int64_t, double>;
    const T* in = data.template data_ptr<T>();
    T* o = out.template data_ptr<T>();
    const int64_t R = p.reduced, I = p.inner, O = p.outer;
    const A s = static_cast<A>(scale);
    if (I == 1) {
      parallel_for(0, O, std::max<int64_t>(1, 32768 / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) o[i] = T(row_sum<T, A>(in + i * R, R) * s);
      });
    } else {
      parallel_for(0, O * I, std::max<int64_t>(1, 32768 / std::max<int64_t>(R, 1)), [&](int64_t b, int64_t e) {
        // Split [b, e) of (outer, inner) into runs within one outer row; each run accumulates R rows.
        std::vector<A> acc;
        for (int64_t pos = b; pos < e;) {
          const int64_t oi = pos / I, ii = pos % I;
          const int64_t n = std::min(I - ii, e - pos);
          acc.assign(n, A(0));
          const T* base = in + oi * R * I + ii;
          for (int64_t r = 0; r < R; ++r) {
            const T* row = base + r * I;
            for (int64_t k = 0; k < n; ++k) acc[k] += static_cast<A>(row[k]);
          }
          for (int64_t k = 0; k < n; ++k) o[oi * I + ii + k] = T(acc[k] * s);
          pos += n;
        }
      });
    }
  });
}

Tensor sum_impl(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, double scale, const char* op) {
  detail::ReducePlan p = detail::plan_reduction(x.detach(), dims, keepdim, op);
  // Integers and bool sum to i64, like PyTorch.
  const DType out_dtype = is_floating(x.dtype()) ? x.dtype() : DType::i64;
  const Tensor data = p.data.to(out_dtype);
  Tensor out = Tensor::empty(p.out_shape, TensorOptions(out_dtype).with_device(x.device()));
  if (out.device().is_cuda()) {
    detail::cuda::sum(out, data, p.outer, p.reduced, p.inner, scale);
  } else {
    sum_cpu(out, data, p, scale, op);
  }
  if (!is_floating(x.dtype())) return out;
  const Shape in_shape = x.shape(), keep_shape = p.keep_shape;
  return record(out, op, {x}, [in_shape, keep_shape, scale](const Tensor& g, const GradNeeds&) {
    Tensor r = g.reshape(keep_shape).expand(in_shape);
    return grads(scale == 1.0 ? r.contiguous() : r * scale);
  });
}

int64_t reduced_count(const Tensor& x, const std::vector<int64_t>& dims) {
  if (dims.empty() || x.dim() == 0) return x.numel();
  int64_t n = 1;
  std::vector<bool> seen(x.dim(), false);
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, x.dim(), "mean");
    if (!seen[w]) n *= x.shape()[w];
    seen[w] = true;
  }
  return n;
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_impl(x, {}, false, 1.0, "sum"); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  return sum_impl(x, dims, keepdim, 1.0, "sum");
}

Tensor mean(const Tensor& x) { return mean(x, {}, false); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  COHORT_CHECK(is_floating(x.dtype()), DTypeError, "mean: expected a floating dtype (f32, f64, bf16, f16), got ",
               dtype_name(x.dtype()), "; convert with .to(DType::f32) first");
  const int64_t n = reduced_count(x, dims);
  return sum_impl(x, dims, keepdim, n > 0 ? 1.0 / static_cast<double>(n) : std::nan(""), "mean");
}

}  // namespace cohort
