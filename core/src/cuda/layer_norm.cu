// layer_norm forward and backward on CUDA. See reduce-ops-impl.h for the contract; the formulas are
// layer_norm.cpp's, computed in float (f32, bf16, f16) or double (f64).
//
// x is (rows, M). Forward and input gradient: a group of `lanes` consecutive threads per row (the
// power of two >= M up to 32 for M <= 1024, several rows per warp; else a block of 512 threads),
// lane k reading elements k, k + lanes, ... Each reads its row twice:
// - forward: one pass for the mean and the sum of squared deviations (Welford's update per
//   thread, Chan's formula to combine threads: stable where E[x^2] - E[x]^2 would cancel, like
//   the CPU's two passes), one pass to write y;
// - input gradient: one pass for sum(g * w) and sum(g * w * xhat), one pass to write gx.
// Weight and bias gradients are sums over rows, column by column: a block of bx * by = 256
// threads owns bx neighbouring columns (a warp reads 32 / bx rows of bx consecutive columns,
// contiguous memory), the by partial sums of a column combine in shared memory, and when the
// column tiles are too few to fill the GPU the rows are cut into chunks whose partial sums a
// second small kernel adds in chunk order (deterministic).
#include <cmath>
#include <cstdint>

#include "device_math-impl.cuh"
#include "loops-impl.cuh"
#include "reduce-ops-impl.h"
#include "rows-impl.cuh"

namespace cohort::detail::cuda {

namespace {

// ---- Welford ----

template <class A>
struct Moments {
  A n, mean, m2;  // count, mean, sum of squared deviations from the mean
};

template <class A>
__device__ __forceinline__ void welford_add(Moments<A>& s, A x) {
  s.n += A(1);
  const A d = x - s.mean;
  s.mean += d / s.n;
  s.m2 += d * (x - s.mean);
}

// Chan et al.: the moments of the union of two disjoint sets.
template <class A>
__device__ __forceinline__ Moments<A> welford_combine(const Moments<A>& a, const Moments<A>& b) {
  if (b.n == A(0)) return a;
  if (a.n == A(0)) return b;
  const A n = a.n + b.n, d = b.mean - a.mean, f = b.n / n;
  return Moments<A>{n, a.mean + d * f, a.m2 + b.m2 + d * d * a.n * f};
}

template <class A>
__device__ __forceinline__ Moments<A> shuffle_xor(const Moments<A>& s, int offset) {
  return Moments<A>{__shfl_xor_sync(kFullMask, s.n, offset), __shfl_xor_sync(kFullMask, s.mean, offset),
                    __shfl_xor_sync(kFullMask, s.m2, offset)};
}

// The row's moments over its group (lanes <= 32) or block; every thread gets them.
template <class A>
__device__ __forceinline__ Moments<A> row_moments(Moments<A> s, int lanes, Moments<A>* scratch) {
  const int width = lanes < kWarpSize ? lanes : kWarpSize;
  for (int offset = width / 2; offset > 0; offset /= 2) s = welford_combine(s, shuffle_xor(s, offset));
  if (lanes <= kWarpSize) return s;
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  __syncthreads();  // the scratch may still be read for the previous row
  if (lane == 0) scratch[warp] = s;
  __syncthreads();
  s = lane < warps ? scratch[lane] : Moments<A>{A(0), A(0), A(0)};
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) s = welford_combine(s, shuffle_xor(s, offset));
  return s;
}

// ---- kernels ----

// y = (x - mean) * rstd * w + b, stats[r] = {mean, rstd}; x, y (rows, M).
template <class T>
__global__ void __launch_bounds__(kLongRowThreads)
    layer_norm_kernel(const T* __restrict__ x, const device_acc_t<T>* __restrict__ w,
                      const device_acc_t<T>* __restrict__ b, T* __restrict__ y, device_acc_t<T>* __restrict__ stats,
                      int64_t rows, int64_t M, device_acc_t<T> eps, int lanes) {
  using A = device_acc_t<T>;
  __shared__ Moments<A> scratch[kWarpSize];
  const int groups = blockDim.x / lanes, group = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * groups; first < rows;
       first += static_cast<int64_t>(gridDim.x) * groups) {  // the same for the whole block
    const int64_t row = first + group;
    const bool active = row < rows;
    Moments<A> s{A(0), A(0), A(0)};
    if (active) {
      const T* xr = x + row * M;
#pragma unroll 4
      for (int64_t j = lane; j < M; j += lanes) welford_add(s, to_acc(xr[j]));
    }
    s = row_moments(s, lanes, scratch);
    if (active) {
      const A mean = s.mean;
      const A rstd = A(1) / d_sqrt(s.m2 / static_cast<A>(M) + eps);
      if (lane == 0) {
        stats[2 * row] = mean;
        stats[2 * row + 1] = rstd;
      }
      const T* xr = x + row * M;
      T* yr = y + row * M;
#pragma unroll 4
      for (int64_t j = lane; j < M; j += lanes) yr[j] = from_acc<T>((to_acc(xr[j]) - mean) * rstd * w[j] + b[j]);
    }
  }
}

// gx = rstd * (g * w - mean(g * w) - xhat * mean(g * w * xhat)), xhat = (x - mean) * rstd.
template <class T>
__global__ void __launch_bounds__(kLongRowThreads)
    layer_norm_input_grad_kernel(const T* __restrict__ x, const T* __restrict__ g,
                                 const device_acc_t<T>* __restrict__ w, const device_acc_t<T>* __restrict__ stats,
                                 T* __restrict__ gx, int64_t rows, int64_t M, int lanes) {
  using A = device_acc_t<T>;
  __shared__ A scratch[kWarpSize];
  const int groups = blockDim.x / lanes, group = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * groups; first < rows;
       first += static_cast<int64_t>(gridDim.x) * groups) {
    const int64_t row = first + group;
    const bool active = row < rows;
    A mu = A(0), rstd = A(0), s1 = A(0), s2 = A(0);
    if (active) {
      mu = stats[2 * row];
      rstd = stats[2 * row + 1];
      const T* xr = x + row * M;
      const T* gr = g + row * M;
#pragma unroll 4
      for (int64_t j = lane; j < M; j += lanes) {
        const A gw = to_acc(gr[j]) * w[j];
        s1 += gw;
        s2 += gw * (to_acc(xr[j]) - mu) * rstd;
      }
    }
    s1 = row_sum(s1, lanes, scratch);
    s2 = row_sum(s2, lanes, scratch);  // block_reduce_sum synchronises before reusing the scratch
    if (active) {
      const A m1 = s1 / static_cast<A>(M), m2 = s2 / static_cast<A>(M);
      const T* xr = x + row * M;
      const T* gr = g + row * M;
      T* out = gx + row * M;
#pragma unroll 4
      for (int64_t j = lane; j < M; j += lanes) {
        const A gh = to_acc(gr[j]) * w[j];
        out[j] = from_acc<T>(rstd * (gh - m1 - (to_acc(xr[j]) - mu) * rstd * m2));
      }
    }
  }
}

// Per chunk c of chunk_len rows and column j: gw[c, j] = sum of g * xhat, gb[c, j] = sum of g
// (the final gradients when there is one chunk). Block (bx, by), by a power of two.
template <class T>
__global__ void __launch_bounds__(kColThreads)
    layer_norm_param_grad_kernel(const T* __restrict__ x, const T* __restrict__ g,
                                 const device_acc_t<T>* __restrict__ stats, device_acc_t<T>* __restrict__ gw,
                                 device_acc_t<T>* __restrict__ gb, int64_t rows, int64_t M, int64_t chunks,
                                 int64_t chunk_len) {
  using A = device_acc_t<T>;
  __shared__ A tile_w[kColThreads], tile_b[kColThreads];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int me = ty * bx + tx;
  const int64_t tiles = (M + bx - 1) / bx;
  for (int64_t seg = blockIdx.x; seg < chunks * tiles; seg += gridDim.x) {  // the same for the whole block
    const int64_t c = seg / tiles, col = (seg - c * tiles) * bx + tx;
    A sw = A(0), sb = A(0);
    if (col < M) {
      const int64_t hi = (c + 1) * chunk_len < rows ? (c + 1) * chunk_len : rows;
#pragma unroll 4
      for (int64_t r = c * chunk_len + ty; r < hi; r += by) {
        const A gj = to_acc(g[r * M + col]);
        sw += gj * (to_acc(x[r * M + col]) - stats[2 * r]) * stats[2 * r + 1];
        sb += gj;
      }
    }
    tile_w[me] = sw;
    tile_b[me] = sb;
    __syncthreads();
    for (int h = by / 2; h > 0; h /= 2) {
      if (ty < h) {
        tile_w[me] += tile_w[me + h * bx];
        tile_b[me] += tile_b[me + h * bx];
      }
      __syncthreads();
    }
    if (ty == 0 && col < M) {
      gw[c * M + col] = tile_w[tx];
      gb[c * M + col] = tile_b[tx];
    }
    __syncthreads();  // the tiles are overwritten by the next segment
  }
}

// out[j] = sum over c of part[c, j], in chunk order; consecutive threads take consecutive j.
template <class A>
__global__ void sum_chunks_kernel(const A* __restrict__ part_w, const A* __restrict__ part_b, A* __restrict__ gw,
                                  A* __restrict__ gb, int64_t chunks, int64_t M) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < M; j += stride) {
    A sw = A(0), sb = A(0);
    for (int64_t c = 0; c < chunks; ++c) {
      sw += part_w[c * M + j];
      sb += part_b[c * M + j];
    }
    gw[j] = sw;
    gb[j] = sb;
  }
}

int multiprocessors(int device) {
  int n = 0;
  COHORT_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  return n > 0 ? n : 1;
}

template <class T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}
template <class T>
T* mptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}

// gw, gb (M, A) = column sums over the rows; through per-chunk partial sums when the M / bx column
// tiles are fewer than 8 blocks per multiprocessor and there are enough rows to cut.
template <class T>
void param_grads(const Tensor& gw, const Tensor& gb, const Tensor& x, const Tensor& g, const Tensor& stats,
                 int64_t rows, int64_t M, cudaStream_t stream) {
  using A = device_acc_t<T>;
  const int bx = lanes_for(M), by = kColThreads / bx;
  const int64_t tiles = ceil_div(M, bx);
  const int64_t min_rows = by * 8 > 64 ? by * 8 : 64;
  const int64_t wanted = ceil_div(static_cast<int64_t>(multiprocessors(gw.device().index)) * 8, tiles);
  const int64_t most = ceil_div(rows, min_rows);
  int64_t chunks = wanted < most ? wanted : most;
  if (chunks < 1) chunks = 1;
  const int64_t chunk_len = ceil_div(rows, chunks);
  chunks = ceil_div(rows, chunk_len);  // no empty chunk
  const dim3 block(static_cast<unsigned>(bx), static_cast<unsigned>(by));
  const int64_t blocks = chunks * tiles < kMaxGrid ? chunks * tiles : kMaxGrid;
  if (chunks == 1) {
    layer_norm_param_grad_kernel<T><<<static_cast<unsigned>(blocks), block, 0, stream>>>(
        cptr<T>(x), cptr<T>(g), cptr<A>(stats), mptr<A>(gw), mptr<A>(gb), rows, M, 1, chunk_len);
    COHORT_CUDA_CHECK_LAUNCH();
    return;
  }
  const TensorOptions opts = TensorOptions(gw.dtype()).with_device(gw.device());
  const Tensor pw = Tensor::empty({chunks, M}, opts), pb = Tensor::empty({chunks, M}, opts);
  layer_norm_param_grad_kernel<T><<<static_cast<unsigned>(blocks), block, 0, stream>>>(
      cptr<T>(x), cptr<T>(g), cptr<A>(stats), mptr<A>(pw), mptr<A>(pb), rows, M, chunks, chunk_len);
  COHORT_CUDA_CHECK_LAUNCH();
  sum_chunks_kernel<A><<<static_cast<unsigned>(grid_blocks(M, kElementwiseThreads)), kElementwiseThreads, 0, stream>>>(
      cptr<A>(pw), cptr<A>(pb), mptr<A>(gw), mptr<A>(gb), chunks, M);
  COHORT_CUDA_CHECK_LAUNCH();
}

}  // namespace

void layer_norm(const Tensor& y, const Tensor& stats, const Tensor& x, const Tensor& w, const Tensor& b,
                int64_t rows, int64_t M, double eps) {
  if (rows * M == 0) return;
  dispatch_device_floating(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    using A = device_acc_t<T>;
    DeviceGuard guard(y.device().index);
    const RowLaunch r = row_launch(rows, M);
    layer_norm_kernel<T><<<r.blocks, r.threads, 0, stream_of(y)>>>(cptr<T>(x), cptr<A>(w), cptr<A>(b), mptr<T>(y),
                                                                  mptr<A>(stats), rows, M, static_cast<A>(eps),
                                                                  r.lanes);
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

void layer_norm_backward(const Tensor& gx, const Tensor& gw, const Tensor& gb, const Tensor& x, const Tensor& stats,
                         const Tensor& w, const Tensor& g, int64_t rows, int64_t M) {
  if (rows * M == 0) return;
  dispatch_device_floating(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    using A = device_acc_t<T>;
    DeviceGuard guard(x.device().index);
    const cudaStream_t stream = stream_of(x);
    if (gx.defined()) {
      const RowLaunch r = row_launch(rows, M);
      layer_norm_input_grad_kernel<T><<<r.blocks, r.threads, 0, stream>>>(cptr<T>(x), cptr<T>(g), cptr<A>(w),
                                                                         cptr<A>(stats), mptr<T>(gx), rows, M, r.lanes);
      COHORT_CUDA_CHECK_LAUNCH();
    }
    if (gw.defined() || gb.defined()) {
      // Both sums come from one pass; a gradient nobody asked for goes to a scratch tensor.
      const TensorOptions opts = TensorOptions(stats.dtype()).with_device(x.device());
      const Tensor w_out = gw.defined() ? gw : Tensor::empty({M}, opts);
      const Tensor b_out = gb.defined() ? gb : Tensor::empty({M}, opts);
      param_grads<T>(w_out, b_out, x, g, stats, rows, M, stream);
    }
  });
}

}  // namespace cohort::detail::cuda
