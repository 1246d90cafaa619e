// max / min over all elements or along one dim (with indices), argmax / argmin, and the gradients
// (the upstream gradient scattered to the position of the extreme).
//
// "First occurrence" and "NaN is the extreme" both come from one rule, beats(): a value replaces
// the current extreme only when strictly greater (smaller), or when it is the first NaN. Scanning
// in index order with that rule finds the first extreme, and combining per-block results in block
// order keeps that true for the parallel full reduction, whatever the thread count. On a CUDA
// tensor cuda/reduce.cu finds the same positions (it orders (value, position) pairs by that rule,
// so any combining order gives the first extreme), and the index of max(x) stays on the device.
#include <algorithm>
#include <type_traits>
#include <vector>

#include "../cuda/reduce-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/reduction.h"
#include "cohort/core/parallel_for.h"
#include "loops-impl.h"
#include "reduce-impl.h"

namespace cohort {

namespace {

template <bool kMax, class A>
inline bool beats(A v, A cur) {
  // v != v is the NaN test (always false for integers and bool).
  if constexpr (kMax) {
    return v > cur || (v != v && cur == cur);
  } else {
    return v < cur || (v != v && cur == cur);
  }
}

// Position of the first extreme of the n >= 1 contiguous values at x.
//
// Each chunk of kChunk values is first reduced into kLanes independent partial extremes (no
// branches, no loop-carried chain through one register), together with a NaN detector
// (v - v summed: NaN once a NaN, or an inf, was seen). Only a chunk that holds a NaN or beats the
// best so far is rescanned in order for the position, and after the first few chunks of typical
// data that is rare. A NaN ends the scan, since nothing beats it.
template <bool kMax, class T>
int64_t arg_extreme_run(const T* x, int64_t n) {
  using A = acc_t<T>;
  constexpr int64_t kLanes = 16, kChunk = 256;
  int64_t bi = 0;
  A bv = A(x[0]);
  auto rescan = [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const A v = A(x[i]);
      if (beats<kMax>(v, bv)) {
        bv = v;
        bi = i;
        if (v != v) return;
      }
    }
  };
  int64_t c = 0;
  for (; c + kChunk <= n && bv == bv; c += kChunk) {
    A lane[kLanes], bad[kLanes];
    for (int64_t k = 0; k < kLanes; ++k) {
      lane[k] = A(x[c + k]);
      bad[k] = A(0);
    }
    for (int64_t j = 0; j < kChunk; j += kLanes) {
      for (int64_t k = 0; k < kLanes; ++k) {
        const A v = A(x[c + j + k]);
        lane[k] = (kMax ? v > lane[k] : v < lane[k]) ? v : lane[k];
        if constexpr (std::is_floating_point_v<A>) bad[k] += v - v;
      }
    }
    A m = lane[0], nan = A(0);
    for (int64_t k = 0; k < kLanes; ++k) {
      m = (kMax ? lane[k] > m : lane[k] < m) ? lane[k] : m;
      nan += bad[k];
    }
    if (nan != nan || beats<kMax>(m, bv)) rescan(c, c + kChunk);
  }
  if (bv == bv) rescan(c, n);
  return bi;
}

// The same over a long run, in blocks of kBlock scanned in parallel and combined in block order.
template <bool kMax, class T>
int64_t arg_extreme_flat(const T* x, int64_t n) {
  using A = acc_t<T>;
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<int64_t> best(blocks);
  parallel_for(0, blocks, 2, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      const int64_t lo = blk * kBlock;
      best[blk] = lo + arg_extreme_run<kMax>(x + lo, std::min(n - lo, kBlock));
    }
  });
  int64_t bi = best[0];
  for (int64_t blk = 1; blk < blocks; ++blk)
    if (beats<kMax>(A(x[best[blk]]), A(x[bi]))) bi = best[blk];
  return bi;
}

// d input of a reduction over every element of in_shape whose extreme sits at flat position
// `index` (an i64 tensor of one element on g's device).
Tensor scatter_grad_flat(const Tensor& g, const Tensor& index, const Shape& in_shape, DType dtype) {
  const int64_t n = numel_of(in_shape);
  Tensor gi = zeros(in_shape, TensorOptions(dtype).with_device(g.device()));
  detail::cuda::scatter_extreme_grad(gi, g.to(dtype).contiguous(), index, 1, n, 1);
  return gi;
}

// max(x) / min(x) of a CUDA tensor: the value and its position are computed and kept on the device
// (no synchronisation), and the backward scatters through the position tensor.
template <bool kMax>
Tensor extreme_all_cuda(const Tensor& x, const Tensor& data, const Tensor& out, const char* op) {
  Tensor index = Tensor::empty({1}, TensorOptions(DType::i64).with_device(x.device()));
  detail::cuda::extreme(out, index, data, 1, data.numel(), 1, kMax);
  if (!is_floating(x.dtype())) return out;
  const Shape shape = x.shape();
  const DType dtype = x.dtype();
  return record(out, op, {x}, [shape, dtype, index](const Tensor& g, const GradNeeds&) {
    return grads(scatter_grad_flat(g, index, shape, dtype));
  });
}

template <bool kMax>
Tensor extreme_all(const Tensor& x, const char* op) {
  COHORT_CHECK(x.defined(), ValueError, op, ": the input tensor is undefined");
  COHORT_CHECK(x.numel() > 0, ValueError, op, ": cannot reduce an empty tensor of shape ", x.shape_str(),
               "; an empty tensor has no ", kMax ? "maximum" : "minimum");
  const Tensor data = x.detach().contiguous();
  Tensor out = Tensor::empty({}, TensorOptions(x.dtype()).with_device(x.device()));
  if (x.device().is_cuda()) return extreme_all_cuda<kMax>(x, data, out, op);
  int64_t index = 0;
  dispatch(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* p = data.template data_ptr<T>();
    index = arg_extreme_flat<kMax>(p, data.numel());
    out.template data_ptr<T>()[0] = p[index];
  });
  if (!is_floating(x.dtype())) return out;
  const Shape shape = x.shape();
  const DType dtype = x.dtype();
  return record(out, op, {x}, [shape, dtype, index](const Tensor& g, const GradNeeds&) {
    Tensor gi = zeros(shape, dtype);
    gi.reshape({-1}).narrow(0, index, 1).copy_(g.reshape({1}));
    return grads(gi);
  });
}

// values/indices of the extreme along the reduced dim of plan p: (outer, R, inner) -> (outer, inner).
template <bool kMax, class T>
void extreme_dim_kernel(const detail::ReducePlan& p, T* values, int64_t* indices) {
  using A = acc_t<T>;
  const T* in = p.data.template data_ptr<T>();
  const int64_t O = p.outer, R = p.reduced, I = p.inner;
  const int64_t grain = std::max<int64_t>(1, 32768 / R);
  if (I == 1) {
    parallel_for(0, O, grain, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        const T* row = in + o * R;
        const int64_t bi = arg_extreme_run<kMax>(row, R);
        values[o] = row[bi];
        indices[o] = bi;
      }
    });
    return;
  }
  // inner > 1: walk each run of positions within one outer row R rows at a time, so every read
  // of the input is contiguous (the same traversal as sum over a middle dim).
  parallel_for(0, O * I, grain, [&](int64_t b, int64_t e) {
    std::vector<A> bv;
    for (int64_t pos = b; pos < e;) {
      const int64_t o = pos / I, i0 = pos % I;
      const int64_t n = std::min(I - i0, e - pos);
      const T* base = in + o * R * I + i0;
      bv.assign(base, base + n);
      int64_t* bi = indices + pos;
      std::fill(bi, bi + n, int64_t(0));
      for (int64_t r = 1; r < R; ++r) {
        const T* row = base + r * I;
        for (int64_t k = 0; k < n; ++k) {
          const A v = A(row[k]);
          if (beats<kMax, A>(v, bv[k])) {
            bv[k] = v;
            bi[k] = r;
          }
        }
      }
      for (int64_t k = 0; k < n; ++k) values[pos + k] = base[bi[k] * I + k];
      pos += n;
    }
  });
}

// d input: zeros of in_shape with g placed, along `dim`, at the positions in `indices`.
Tensor scatter_grad(const Tensor& g, const Tensor& indices, const Shape& in_shape, int64_t dim, DType dtype) {
  Tensor gi = zeros(in_shape, TensorOptions(dtype).with_device(indices.device()));
  const Tensor gc = g.to(dtype).contiguous();
  int64_t O = 1, I = 1;
  for (int64_t d = 0; d < dim; ++d) O *= in_shape[d];
  for (int64_t d = dim + 1; d < static_cast<int64_t>(in_shape.size()); ++d) I *= in_shape[d];
  const int64_t R = in_shape[dim];
  if (gi.device().is_cuda()) {
    detail::cuda::scatter_extreme_grad(gi, gc, indices, O, R, I);
    return gi;
  }
  const int64_t* ix = indices.data_ptr<int64_t>();
  dispatch_floating(dtype, "backward", [&](auto tag) {
    using T = decltype(tag);
    const T* src = gc.template data_ptr<T>();
    T* dst = gi.template data_ptr<T>();
    parallel_for(0, O * I, detail::kElementwiseGrain, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) dst[(p / I * R + ix[p]) * I + p % I] = src[p];
    });
  });
  return gi;
}

template <bool kMax>
ValuesIndices extreme_dim(const Tensor& x, int64_t dim, bool keepdim, const char* op) {
  COHORT_CHECK(x.defined(), ValueError, op, ": the input tensor is undefined");
  if (x.dim() == 0) {  // a scalar has one dim-like position (dim 0 or -1), as in PyTorch
    wrap_dim(dim, 0, op);
    return extreme_dim<kMax>(x.reshape({1}), 0, false, op);
  }
  const int64_t d = wrap_dim(dim, x.dim(), op);
  COHORT_CHECK(x.shape()[d] > 0, ValueError, op, ": cannot reduce an empty dim of size 0 (dim ", d,
               " of shape ", x.shape_str(), ")");
  const detail::ReducePlan p = detail::plan_reduction(x.detach(), {d}, keepdim, op);
  Tensor values = Tensor::empty(p.out_shape, TensorOptions(x.dtype()).with_device(x.device()));
  Tensor indices = Tensor::empty(p.out_shape, TensorOptions(DType::i64).with_device(x.device()));
  if (values.numel() > 0 && x.device().is_cuda()) {
    detail::cuda::extreme(values, indices, p.data, p.outer, p.reduced, p.inner, kMax);
  } else if (values.numel() > 0) {
    dispatch(x.dtype(), op, [&](auto tag) {
      using T = decltype(tag);
      extreme_dim_kernel<kMax, T>(p, values.template data_ptr<T>(), indices.data_ptr<int64_t>());
    });
  }
  if (!is_floating(x.dtype())) return {values, indices};
  const Shape shape = x.shape();
  const DType dtype = x.dtype();
  values = record(values, op, {x}, [indices, shape, d, dtype](const Tensor& g, const GradNeeds&) {
    return grads(scatter_grad(g, indices, shape, d, dtype));
  });
  return {values, indices};
}

}  // namespace

Tensor max(const Tensor& x) { return extreme_all<true>(x, "max"); }
Tensor min(const Tensor& x) { return extreme_all<false>(x, "min"); }

ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_dim<true>(x, dim, keepdim, "max"); }
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_dim<false>(x, dim, keepdim, "min"); }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;  // only the indices are wanted: record nothing
  return extreme_dim<true>(x, dim, keepdim, "argmax").indices;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return extreme_dim<false>(x, dim, keepdim, "argmin").indices;
}

}  // namespace cohort
