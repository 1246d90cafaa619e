// softmax and log_softmax along any dim, each with its gradient.
//
// A tensor reduced along `dim` is laid out (outer, C, inner). Every kernel here is written once as
// a function of one contiguous row of C values; for inner > 1 the driver gathers a block of
// columns into contiguous scratch rows, runs the row function on each, and scatters the result.
// A CUDA tensor goes to cuda/softmax.cu with the same (outer, C, inner) layout.
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "../cuda/reduce-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/parallel_for.h"
#include "vec-math-impl.h"

namespace cohort {

namespace {

struct RowLayout {
  int64_t outer = 1, C = 1, inner = 1;
};

RowLayout row_layout(const Shape& shape, int64_t dim) {
  RowLayout l;
  for (int64_t d = 0; d < dim; ++d) l.outer *= shape[d];
  l.C = shape.empty() ? 1 : shape[dim];
  for (size_t d = static_cast<size_t>(dim) + 1; d < shape.size(); ++d) l.inner *= shape[d];
  return l;
}

// Columns handled together when inner > 1: 16 neighbouring floats are one cache line, so the
// gather reads whole lines instead of one element per line.
constexpr int64_t kLanes = 16;

// Runs row(in_rows, out_row, C) for every (outer, inner) position of contiguous tensors laid out
// as (outer, C, inner). `in` holds N input base pointers, `out` the output base pointer.
//
// inner == 1: rows are contiguous already, threads take ranges of rows.
// inner > 1: threads take ranges of lane blocks (o, i0 .. i0+kLanes); each block is copied into
// N scratch rows per lane (scratch[n][lane * C + c] = in[n][o][c][i0 + lane]), the row function
// writes a scratch output row per lane, and the block is written back column-wise.
template <class T, size_t N, class Row>
void for_each_row(const RowLayout& l, std::array<const T*, N> in, T* out, const Row& row) {
  const int64_t C = l.C, inner = l.inner;
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
  if (inner == 1) {
    parallel_for(0, l.outer, grain, [&](int64_t b, int64_t e) {
      std::array<const T*, N> rows;
      for (int64_t r = b; r < e; ++r) {
        for (size_t n = 0; n < N; ++n) rows[n] = in[n] + r * C;
        row(rows, out + r * C, C);
      }
    });
    return;
  }
  const int64_t blocks_per_outer = (inner + kLanes - 1) / kLanes;
  parallel_for(0, l.outer * blocks_per_outer, std::max<int64_t>(1, grain / kLanes), [&](int64_t b, int64_t e) {
    std::vector<T> scratch((N + 1) * kLanes * C);
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t o = blk / blocks_per_outer, i0 = (blk % blocks_per_outer) * kLanes;
      const int64_t lanes = std::min(kLanes, inner - i0);
      const int64_t base = o * C * inner + i0;
      for (size_t n = 0; n < N; ++n) {
        T* s = scratch.data() + n * kLanes * C;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t k = 0; k < lanes; ++k) s[k * C + c] = in[n][base + c * inner + k];
      }
      T* so = scratch.data() + N * kLanes * C;
      std::array<const T*, N> rows;
      for (int64_t k = 0; k < lanes; ++k) {
        for (size_t n = 0; n < N; ++n) rows[n] = scratch.data() + n * kLanes * C + k * C;
        row(rows, so + k * C, C);
      }
      for (int64_t c = 0; c < C; ++c)
        for (int64_t k = 0; k < lanes; ++k) out[base + c * inner + k] = so[k * C + c];
    }
  });
}

template <class T, class A>
A row_max(const T* x, int64_t C) {
  A m = -std::numeric_limits<A>::infinity();
  for (int64_t c = 0; c < C; ++c) m = std::max(m, static_cast<A>(x[c]));
  return m;
}

// Softmax or log-softmax of one row: subtracting the row max keeps exp() from overflowing, so
// logits of 1e4 give the same result as logits of 0. exp() is the costly part: it is computed
// once per element into `e` (kept in A until the final rounding), in a loop of its own so that
// it vectorises.
template <class T, bool kLog>
void softmax_row(const T* x, T* y, int64_t C) {
  using A = acc_t<T>;
  const A m = row_max<T, A>(x, C);
  if (m == -std::numeric_limits<A>::infinity()) {
    // Every entry is -inf: PyTorch gives NaN (0/0), and so do we.
    for (int64_t c = 0; c < C; ++c) y[c] = T(std::numeric_limits<A>::quiet_NaN());
    return;
  }
  thread_local std::vector<A> e;
  e.resize(C);
  A* ep = e.data();
  for (int64_t c = 0; c < C; ++c) ep[c] = detail::vec_exp(static_cast<A>(x[c]) - m);
  const A s = detail::lane_sum<A>(C, [ep](int64_t c) { return ep[c]; });
  if constexpr (kLog) {
    const A lse = m + std::log(s);
    for (int64_t c = 0; c < C; ++c) y[c] = T(static_cast<A>(x[c]) - lse);
  } else {
    const A inv = A(1) / s;
    for (int64_t c = 0; c < C; ++c) y[c] = T(ep[c] * inv);
  }
}

// d/dx of softmax: y * (g - sum(g * y)); of log_softmax: g - exp(y) * sum(g).
template <class T, bool kLog>
void softmax_backward_row(const T* y, const T* g, T* gx, int64_t C) {
  using A = acc_t<T>;
  if constexpr (kLog) {
    const A s = detail::lane_sum<A>(C, [g](int64_t c) { return static_cast<A>(g[c]); });
    for (int64_t c = 0; c < C; ++c) gx[c] = T(static_cast<A>(g[c]) - detail::vec_exp(static_cast<A>(y[c])) * s);
  } else {
    const A s = detail::lane_sum<A>(C, [g, y](int64_t c) { return static_cast<A>(g[c]) * static_cast<A>(y[c]); });
    for (int64_t c = 0; c < C; ++c) gx[c] = T(static_cast<A>(y[c]) * (static_cast<A>(g[c]) - s));
  }
}

template <bool kLog>
Tensor softmax_backward(const Tensor& y, const Tensor& g_in, int64_t dim) {
  const Tensor g = g_in.contiguous().to(y.dtype()).contiguous();
  Tensor gx = Tensor::empty(y.shape(), TensorOptions(y.dtype()).with_device(y.device()));
  if (y.numel() == 0) return gx;
  const RowLayout l = row_layout(y.shape(), dim);
  if (y.device().is_cuda()) {
    detail::cuda::softmax_backward(gx, y, g, l.outer, l.C, l.inner, kLog);
    return gx;
  }
  dispatch_floating(y.dtype(), kLog ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    for_each_row<T, 2>(
        l, {y.data_ptr<T>(), g.data_ptr<T>()}, gx.data_ptr<T>(),
        [](std::array<const T*, 2> r, T* o, int64_t C) { softmax_backward_row<T, kLog>(r[0], r[1], o, C); });
  });
  return gx;
}

template <bool kLog>
Tensor softmax_impl(const Tensor& x_in, int64_t dim_in) {
  const char* op = kLog ? "log_softmax" : "softmax";
  COHORT_CHECK(x_in.defined(), ValueError, op, ": the input tensor is undefined");
  // A 0-dim tensor is a row of one element (PyTorch accepts dim 0 or -1 for it).
  const int64_t dim = wrap_dim(dim_in, std::max<int64_t>(x_in.dim(), 1), op);
  const Tensor x = x_in.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    if (x.numel() == 0) return;
    if (x.device().is_cuda()) {
      const RowLayout l = row_layout(x.shape(), dim);
      detail::cuda::softmax(out, x, l.outer, l.C, l.inner, kLog);
      return;
    }
    for_each_row<T, 1>(row_layout(x.shape(), dim), {x.data_ptr<T>()}, out.data_ptr<T>(),
                       [](std::array<const T*, 1> r, T* o, int64_t C) { softmax_row<T, kLog>(r[0], o, C); });
  });
  return record(out, op, {x_in}, [y = out.detach(), dim](const Tensor& g, const GradNeeds&) {
    return grads(softmax_backward<kLog>(y, g, dim));
  });
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl<false>(x, dim); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl<true>(x, dim); }

}  // namespace cohort
