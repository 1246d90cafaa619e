// softmax and log_softmax along a dim, their gradients, and cross_entropy's per-target loss and
// gradient, on CUDA. See reduce-ops-impl.h for the contract; the formulas are softmax.cpp's and
// cross_entropy.cpp's, computed in float (f32, bf16, f16) or double (f64).
//
// Layouts, as in reduce.cu: a tensor reduced along C is (outer, C, inner).
// - inner == 1 (the last dim): a group of `lanes` consecutive threads owns a row of C values;
//   lanes is the power of two >= C up to 32 for C <= 1024 (rows share a warp, shuffles stay in the
//   group), else a block of 512 threads per row. Lane k reads elements k, k + lanes, ...
// - inner > 1: a block of bx * by = 256 threads owns bx neighbouring columns (bx the power of two
//   >= inner, at most 32) of one outer index; thread (tx, ty) walks c = ty, ty + by, ... of column
//   tx, so a warp reads contiguous memory; the by states of a column combine in shared memory.
//
// The forward reads each row twice: one pass keeps the running max m and the sum s of exp(x - m),
// rescaling s when m grows ("online softmax"), the second writes exp(x - m) / s (or x - m - log s).
// The result is the CPU's two-pass one up to rounding, NaN and infinities included: the CPU's max
// skips NaN, a NaN makes s NaN, and a row whose max is -inf or +inf is all NaN (0/0, inf - inf).
#include <cmath>
#include <cstdint>
#include <limits>

#include "device_math-impl.cuh"
#include "loops-impl.cuh"
#include "reduce-ops-impl.h"
#include "rows-impl.cuh"

namespace cohort::detail::cuda {

namespace {

template <class A>
__device__ __forceinline__ A infinity() {
  return std::numeric_limits<A>::infinity();
}

// ---- the running (max, sum of exp) ----

// Folds x into (m, s), s = sum of exp(x_k - m) so far. m ignores NaN like the CPU's max, and an x
// equal to m adds 1 (so -inf next to -inf or +inf next to +inf adds no NaN; such a row ends with
// m = +-inf and is NaN anyway, and ones added while m was -inf are scaled by exp(-inf) = 0 once a
// finite m arrives). One exp per element.
template <class A>
__device__ __forceinline__ void fold_max_sum(A& m, A& s, A x) {
  if (x > m) {
    s = s * d_exp(m - x) + A(1);
    m = x;
  } else {
    s += x == m ? A(1) : d_exp(x - m);  // NaN x: exp(NaN) makes s NaN, as on the CPU
  }
}

template <class A>
__device__ __forceinline__ void combine_max_sum(A& m, A& s, A m2, A s2) {
  const A mm = m2 > m ? m2 : m;
  s = (m == mm ? s : s * d_exp(m - mm)) + (m2 == mm ? s2 : s2 * d_exp(m2 - mm));
  m = mm;
}

// Combines (m, s) over the row's group (lanes <= 32) or block; every thread gets the result.
template <class A>
__device__ __forceinline__ void row_max_sum(A& m, A& s, int lanes, A* scratch_m, A* scratch_s) {
  const int width = lanes < kWarpSize ? lanes : kWarpSize;
  for (int offset = width / 2; offset > 0; offset /= 2) {
    const A m2 = __shfl_xor_sync(kFullMask, m, offset), s2 = __shfl_xor_sync(kFullMask, s, offset);
    combine_max_sum(m, s, m2, s2);
  }
  if (lanes <= kWarpSize) return;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  __syncthreads();  // the scratch may still be read for the previous row
  if (lane == 0) {
    scratch_m[warp] = m;
    scratch_s[warp] = s;
  }
  __syncthreads();
  m = lane < warps ? scratch_m[lane] : -infinity<A>();
  s = lane < warps ? scratch_s[lane] : A(0);
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const A m2 = __shfl_xor_sync(kFullMask, m, offset), s2 = __shfl_xor_sync(kFullMask, s, offset);
    combine_max_sum(m, s, m2, s2);
  }
}

// What the output pass needs from a row's (m, s): y = exp(x - m) * k (softmax) or x - k
// (log_softmax, k = m + log s); a row whose max is infinite is NaN.
template <class A>
struct RowNorm {
  A m, k;
  bool nan;
};

template <class A>
__device__ __forceinline__ RowNorm<A> row_norm(A m, A s, bool log) {
  RowNorm<A> r;
  r.m = m;
  r.nan = m == infinity<A>() || m == -infinity<A>();
  r.k = log ? m + d_log(s) : A(1) / s;
  return r;
}

template <class T, class A>
__device__ __forceinline__ T softmax_value(A x, const RowNorm<A>& r, bool log) {
  if (r.nan) return from_acc<T>(std::numeric_limits<A>::quiet_NaN());
  return from_acc<T>(log ? A(x - r.k) : A(d_exp(x - r.m) * r.k));
}

// ---- softmax forward ----

// x, y (rows, C): one group (or block) of `lanes` threads per row.
template <class T>
__global__ void __launch_bounds__(kLongRowThreads)
    softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t C, int lanes, bool log) {
  using A = device_acc_t<T>;
  __shared__ A scratch_m[kWarpSize], scratch_s[kWarpSize];
  const int groups = blockDim.x / lanes, group = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * groups; first < rows;
       first += static_cast<int64_t>(gridDim.x) * groups) {  // the same for the whole block
    const int64_t row = first + group;
    const bool active = row < rows;
    const T* xr = x + row * C;
    A m = -infinity<A>(), s = A(0);
    if (active) {
#pragma unroll 4
      for (int64_t c = lane; c < C; c += lanes) fold_max_sum(m, s, to_acc(xr[c]));
    }
    row_max_sum(m, s, lanes, scratch_m, scratch_s);
    if (active) {
      const RowNorm<A> r = row_norm(m, s, log);
      T* yr = y + row * C;
#pragma unroll 4
      for (int64_t c = lane; c < C; c += lanes) yr[c] = softmax_value<T>(to_acc(xr[c]), r, log);
    }
  }
}

// x, y (outer, C, inner), inner > 1: a (bx, by) block per bx columns of one outer index.
template <class T>
__global__ void __launch_bounds__(kColThreads)
    softmax_cols_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t C, int64_t inner,
                        bool log) {
  using A = device_acc_t<T>;
  __shared__ A tile_m[kColThreads], tile_s[kColThreads];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int me = ty * bx + tx;
  const int64_t tiles = (inner + bx - 1) / bx;
  for (int64_t seg = blockIdx.x; seg < outer * tiles; seg += gridDim.x) {  // the same for the whole block
    const int64_t o = seg / tiles, col = (seg - o * tiles) * bx + tx;
    const bool active = col < inner;
    const int64_t base = o * C * inner + col;
    A m = -infinity<A>(), s = A(0);
    if (active) {
#pragma unroll 4
      for (int64_t c = ty; c < C; c += by) fold_max_sum(m, s, to_acc(x[base + c * inner]));
    }
    tile_m[me] = m;
    tile_s[me] = s;
    __syncthreads();
    for (int h = by / 2; h > 0; h /= 2) {
      if (ty < h) combine_max_sum(tile_m[me], tile_s[me], tile_m[me + h * bx], tile_s[me + h * bx]);
      __syncthreads();
    }
    m = tile_m[tx];
    s = tile_s[tx];
    __syncthreads();  // the tile is overwritten by the next segment
    if (active) {
      const RowNorm<A> r = row_norm(m, s, log);
#pragma unroll 4
      for (int64_t c = ty; c < C; c += by) y[base + c * inner] = softmax_value<T>(to_acc(x[base + c * inner]), r, log);
    }
  }
}

// ---- softmax backward ----

// softmax: gx = y * (g - sum(g * y)); log_softmax: gx = g - exp(y) * sum(g).
template <class T, class A>
__device__ __forceinline__ A backward_term(T yv, T gv, bool log) {
  return log ? to_acc(gv) : A(to_acc(gv) * to_acc(yv));
}

template <class T, class A>
__device__ __forceinline__ T backward_value(T yv, T gv, A sum, bool log) {
  const A yy = to_acc(yv), gg = to_acc(gv);
  return from_acc<T>(log ? A(gg - d_exp(yy) * sum) : A(yy * (gg - sum)));
}

template <class T>
__global__ void __launch_bounds__(kLongRowThreads)
    softmax_backward_rows_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ gx, int64_t rows,
                                 int64_t C, int lanes, bool log) {
  using A = device_acc_t<T>;
  __shared__ A scratch[kWarpSize];
  const int groups = blockDim.x / lanes, group = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * groups; first < rows;
       first += static_cast<int64_t>(gridDim.x) * groups) {
    const int64_t row = first + group;
    const bool active = row < rows;
    const T* yr = y + row * C;
    const T* gr = g + row * C;
    A acc = A(0);
    if (active) {
#pragma unroll 4
      for (int64_t c = lane; c < C; c += lanes) acc += backward_term<T, A>(yr[c], gr[c], log);
    }
    acc = row_sum(acc, lanes, scratch);
    if (active) {
      T* out = gx + row * C;
#pragma unroll 4
      for (int64_t c = lane; c < C; c += lanes) out[c] = backward_value<T, A>(yr[c], gr[c], acc, log);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kColThreads)
    softmax_backward_cols_kernel(const T* __restrict__ y, const T* __restrict__ g, T* __restrict__ gx, int64_t outer,
                                 int64_t C, int64_t inner, bool log) {
  using A = device_acc_t<T>;
  __shared__ A tile[kColThreads];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int me = ty * bx + tx;
  const int64_t tiles = (inner + bx - 1) / bx;
  for (int64_t seg = blockIdx.x; seg < outer * tiles; seg += gridDim.x) {
    const int64_t o = seg / tiles, col = (seg - o * tiles) * bx + tx;
    const bool active = col < inner;
    const int64_t base = o * C * inner + col;
    A acc = A(0);
    if (active) {
#pragma unroll 4
      for (int64_t c = ty; c < C; c += by) acc += backward_term<T, A>(y[base + c * inner], g[base + c * inner], log);
    }
    tile[me] = acc;
    __syncthreads();
    for (int h = by / 2; h > 0; h /= 2) {
      if (ty < h) tile[me] += tile[me + h * bx];
      __syncthreads();
    }
    acc = tile[tx];
    __syncthreads();
    if (active) {
#pragma unroll 4
      for (int64_t c = ty; c < C; c += by) {
        const int64_t k = base + c * inner;
        gx[k] = backward_value<T, A>(y[k], g[k], acc, log);
      }
    }
  }
}

// ---- cross entropy ----

// loss[m] = -logp[n, t, i] (m = n * inner + i), 0 where t is ignored. The targets were checked on
// the host; one out of range here (never expected) gives NaN rather than a stray read.
template <class T>
__global__ void nll_kernel(double* __restrict__ loss, const T* __restrict__ logp, const int64_t* __restrict__ target,
                           int64_t M, int64_t C, int64_t inner, int64_t ignore) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t m = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; m < M; m += stride) {
    const int64_t t = target[m];
    const int64_t n = m / inner, i = m - n * inner;
    if (t == ignore) {
      loss[m] = 0.0;
    } else if (t < 0 || t >= C) {
      loss[m] = std::numeric_limits<double>::quiet_NaN();
    } else {
      loss[m] = -static_cast<double>(to_acc(logp[(n * C + t) * inner + i]));
    }
  }
}

// The weight of target m's loss: g[m] (Reduction::none) or g[0] / divisor; 0 where ignored.
__device__ __forceinline__ double target_weight(const double* g, int64_t m, int64_t t, int64_t ignore, bool per_target,
                                                double divisor) {
  if (t == ignore) return 0.0;
  return per_target ? g[m] : g[0] / divisor;
}

// gx = exp(logp) * w, and (exp(logp) - 1) * w at the target (computed before rounding).
template <class T, class A>
__device__ __forceinline__ T ce_grad_value(T lp, bool is_target, A w) {
  const A e = d_exp(to_acc(lp));
  return from_acc<T>(is_target ? A((e - A(1)) * w) : A(e * w));
}

// inner == 1: logp, gx (N, C); one group (or block) of threads per sample n.
template <class T>
__global__ void __launch_bounds__(kLongRowThreads)
    ce_backward_rows_kernel(T* __restrict__ gx, const T* __restrict__ logp, const int64_t* __restrict__ target,
                            const double* __restrict__ g, int64_t N, int64_t C, int lanes, int64_t ignore,
                            bool per_target, double divisor) {
  using A = device_acc_t<T>;
  const int groups = blockDim.x / lanes, group = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  for (int64_t n = static_cast<int64_t>(blockIdx.x) * groups + group; n < N;
       n += static_cast<int64_t>(gridDim.x) * groups) {  // no barriers or shuffles here: rows may diverge
    const int64_t t = target[n];
    const A w = static_cast<A>(target_weight(g, n, t, ignore, per_target, divisor));
    const T* lr = logp + n * C;
    T* out = gx + n * C;
#pragma unroll 4
    for (int64_t c = lane; c < C; c += lanes) out[c] = ce_grad_value<T, A>(lr[c], c == t && t != ignore, w);
  }
}

// inner > 1: logp, gx (N, C, inner); one group (or block) of threads per (n, c), walking i.
template <class T>
__global__ void __launch_bounds__(kLongRowThreads)
    ce_backward_spatial_kernel(T* __restrict__ gx, const T* __restrict__ logp, const int64_t* __restrict__ target,
                               const double* __restrict__ g, int64_t N, int64_t C, int64_t inner, int lanes,
                               int64_t ignore, bool per_target, double divisor) {
  using A = device_acc_t<T>;
  const int groups = blockDim.x / lanes, group = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  const double w0 = per_target ? 0.0 : g[0] / divisor;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * groups + group; row < N * C;
       row += static_cast<int64_t>(gridDim.x) * groups) {
    const int64_t n = row / C, c = row - n * C;
    const int64_t* tn = target + n * inner;
    const T* lr = logp + row * inner;
    T* out = gx + row * inner;
#pragma unroll 4
    for (int64_t i = lane; i < inner; i += lanes) {
      const int64_t t = tn[i];
      const double wd = t == ignore ? 0.0 : (per_target ? g[n * inner + i] : w0);
      out[i] = ce_grad_value<T, A>(lr[i], c == t && t != ignore, static_cast<A>(wd));
    }
  }
}

struct ColLaunch {
  dim3 block;
  unsigned blocks;
};

ColLaunch col_launch(int64_t outer, int64_t inner) {
  const int bx = lanes_for(inner);
  ColLaunch c;
  c.block = dim3(static_cast<unsigned>(bx), static_cast<unsigned>(kColThreads / bx));
  const int64_t blocks = outer * ceil_div(inner, bx);
  c.blocks = static_cast<unsigned>(blocks < kMaxGrid ? blocks : kMaxGrid);
  return c;
}

template <class T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <class T>
T* mptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

}  // namespace

void softmax(const Tensor& out, const Tensor& x, int64_t outer, int64_t C, int64_t inner, bool log) {
  if (outer * C * inner == 0) return;
  dispatch_device_floating(x.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    DeviceGuard guard(out.device().index);
    const cudaStream_t stream = stream_of(out);
    if (inner == 1) {
      const RowLaunch r = row_launch(outer, C);
      softmax_rows_kernel<T><<<r.blocks, r.threads, 0, stream>>>(cptr<T>(x), mptr<T>(out), outer, C, r.lanes, log);
    } else {
      const ColLaunch c = col_launch(outer, inner);
      softmax_cols_kernel<T><<<c.blocks, c.block, 0, stream>>>(cptr<T>(x), mptr<T>(out), outer, C, inner, log);
    }
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

void softmax_backward(const Tensor& gx, const Tensor& y, const Tensor& g, int64_t outer, int64_t C, int64_t inner,
                      bool log) {
  if (outer * C * inner == 0) return;
  dispatch_device_floating(y.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    DeviceGuard guard(gx.device().index);
    const cudaStream_t stream = stream_of(gx);
    if (inner == 1) {
      const RowLaunch r = row_launch(outer, C);
      softmax_backward_rows_kernel<T>
          <<<r.blocks, r.threads, 0, stream>>>(cptr<T>(y), cptr<T>(g), mptr<T>(gx), outer, C, r.lanes, log);
    } else {
      const ColLaunch c = col_launch(outer, inner);
      softmax_backward_cols_kernel<T>
          <<<c.blocks, c.block, 0, stream>>>(cptr<T>(y), cptr<T>(g), mptr<T>(gx), outer, C, inner, log);
    }
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

void nll_loss(const Tensor& loss, const Tensor& logp, const Tensor& target, int64_t C, int64_t inner,
              int64_t ignore_index) {
  const int64_t M = loss.numel();
  if (M == 0) return;
  dispatch_device_floating(logp.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    DeviceGuard guard(loss.device().index);
    const unsigned blocks = static_cast<unsigned>(grid_blocks(M, kElementwiseThreads));
    nll_kernel<T><<<blocks, kElementwiseThreads, 0, stream_of(loss)>>>(
        mptr<double>(loss), cptr<T>(logp), target.data_ptr<int64_t>(), M, C, inner, ignore_index);
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

void cross_entropy_backward(const Tensor& gx, const Tensor& logp, const Tensor& target, const Tensor& g,
                            int64_t C, int64_t inner, int64_t ignore_index, bool per_target, double divisor) {
  const int64_t N = logp.size(0);
  if (N * C * inner == 0) return;
  dispatch_device_floating(logp.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    DeviceGuard guard(gx.device().index);
    const cudaStream_t stream = stream_of(gx);
    const int64_t* tp = target.data_ptr<int64_t>();
    const double* gp = g.data_ptr<double>();
    if (inner == 1) {
      const RowLaunch r = row_launch(N, C);
      ce_backward_rows_kernel<T><<<r.blocks, r.threads, 0, stream>>>(mptr<T>(gx), cptr<T>(logp), tp, gp, N, C,
                                                                    r.lanes, ignore_index, per_target, divisor);
    } else {
      const RowLaunch r = row_launch(N * C, inner);
      ce_backward_spatial_kernel<T><<<r.blocks, r.threads, 0, stream>>>(
          mptr<T>(gx), cptr<T>(logp), tp, gp, N, C, inner, r.lanes, ignore_index, per_target, divisor);
    }
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cohort::detail::cuda
