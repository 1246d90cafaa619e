// scaled_dot_product_attention on CUDA: cuBLAS's batched products for the four matrix products of
// each direction, and one row kernel per direction between them (the softmax forward, with the
// scale and the causal mask; its gradient backward). Correct first: the causal mask only zeroes
// P and dS, the products still run over the full (L, S) tiles (half of them wasted when causal).
//
//   forward:  probs (batch, L, S) = q k^T                       [cuBLAS, f32 out for 16-bit q, k]
//             probs = softmax(scale * probs), masked            [softmax_rows_kernel, in place]
//             out (..., L, Ev) = P v                           [cuBLAS]
//   backward: dv = P^T g                                        [cuBLAS]
//             dP (batch, L, S) = g v^T                          [cuBLAS, f32 out for 16-bit g, v]
//             dS = scale * P * (dP - rowsum(P * dP)), masked    [softmax_grad_rows_kernel, in place]
//             dq = dS k,  dk = dS^T q                           [cuBLAS]
//
// Row kernels: one warp per row of (batch * L) rows, 4 warps (4 rows) per block of 128 threads;
// lane j reads columns j, j + 32, ... so a warp's loads are coalesced, and the row's max and sums
// are warp shuffles (no shared memory, no __syncthreads). Row r is query i = r % L; with the causal
// mask it sees keys [0, min(i + 1, S)), as on the CPU. Scores and P are in the accumulation type A
// (float, double for f64); for bf16/f16 a rounded copy of P (and of dS) in T feeds the next
// product, as cuBLAS needs both factors in one dtype.
#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

#include "blas-ops-impl.h"
#include "block_reduce-impl.cuh"
#include "cuda-impl.h"
#include "elementwise-ops-impl.h"
#include "loops-impl.cuh"

namespace cohort::detail::cuda {

namespace {

constexpr int kRowsPerBlock = 4;
constexpr int kRowThreads = kRowsPerBlock * kWarpSize;

template <class A>
__device__ __forceinline__ A exp_acc(A x) {
  if constexpr (std::is_same_v<A, double>) {
    return exp(x);
  } else {
    return expf(x);
  }
}

// s (rows, S): the scores on entry, P on exit. p_t (rows, S) gets P rounded to T, unless null.
template <class A, class T>
__global__ void softmax_rows_kernel(A* s, T* p_t, int64_t rows, int64_t L, int64_t S, bool causal, A scale) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;  // the whole warp leaves: `row` is the same for its 32 lanes
  const int64_t i = row % L;
  const int64_t n = causal ? (i + 1 < S ? i + 1 : S) : S;  // keys this query sees
  A* x = s + row * S;
  A mx = -INFINITY;
  for (int64_t j = lane; j < n; j += kWarpSize) mx = nan_max(mx, x[j] * scale);
  mx = warp_reduce_max(mx);
  A sum = 0;
  for (int64_t j = lane; j < n; j += kWarpSize) {
    const A e = exp_acc(x[j] * scale - mx);
    x[j] = e;
    sum += e;
  }
  sum = warp_reduce_sum(sum);
  const A inv = A(1) / sum;
  T* pt = p_t != nullptr ? p_t + row * S : nullptr;
  for (int64_t j = lane; j < S; j += kWarpSize) {
    const A p = j < n ? x[j] * inv : A(0);
    x[j] = p;
    if (pt != nullptr) pt[j] = from_acc<T>(p);
  }
}

// dp (rows, S): dP on entry, dS on exit; p (rows, S) is P. ds_t gets dS rounded to T, unless null.
template <class A, class T>
__global__ void softmax_grad_rows_kernel(const A* p, A* dp, T* ds_t, int64_t rows, int64_t L, int64_t S, bool causal,
                                         A scale) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;
  const int64_t i = row % L;
  const int64_t n = causal ? (i + 1 < S ? i + 1 : S) : S;
  const A* pr = p + row * S;
  A* d = dp + row * S;
  A dot = 0;
  for (int64_t j = lane; j < n; j += kWarpSize) dot += pr[j] * d[j];
  dot = warp_reduce_sum(dot);
  T* dt = ds_t != nullptr ? ds_t + row * S : nullptr;
  for (int64_t j = lane; j < S; j += kWarpSize) {
    const A v = j < n ? scale * pr[j] * (d[j] - dot) : A(0);
    d[j] = v;
    if (dt != nullptr) dt[j] = from_acc<T>(v);
  }
}

unsigned row_blocks(int64_t rows) { return static_cast<unsigned>((rows + kRowsPerBlock - 1) / kRowsPerBlock); }

// (batch, L, S) viewed with the batch dims of `like` (..., L, E): what matmul pairs with q, k, v.
Tensor with_batch_dims_of(const Tensor& t, const Tensor& like) {
  Shape s(like.shape().begin(), like.shape().end() - 2);
  s.push_back(t.size(-2));
  s.push_back(t.size(-1));
  return t.view(s);
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& probs,
                       bool causal, double scale) {
  check_same_cuda_device("scaled_dot_product_attention", out.device(), {&q, &k, &v, &probs});
  DeviceGuard guard(out.device().index);
  const int64_t L = probs.size(-2), S = probs.size(-1), rows = probs.numel() / S;
  const Tensor scores = with_batch_dims_of(probs, q);  // (..., L, S)
  matmul(scores, q, k.transpose(-1, -2));
  const bool rounded = q.dtype() == DType::bf16 || q.dtype() == DType::f16;
  const Tensor p_t = rounded ? Tensor::empty(scores.shape(), TensorOptions(q.dtype()).with_device(q.device())) : scores;
  dispatch_device_floating(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    using A = device_acc_t<T>;
    T* pt = rounded ? static_cast<T*>(p_t.raw_data()) : nullptr;
    softmax_rows_kernel<A, T><<<row_blocks(rows), kRowThreads, 0, stream_of(out)>>>(
        static_cast<A*>(probs.raw_data()), pt, rows, L, S, causal, static_cast<A>(scale));
    COHORT_CUDA_CHECK_LAUNCH();
  });
  matmul(out, p_t, v);
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs, const Tensor& g,
                        const Tensor& dq, const Tensor& dk, const Tensor& dv, bool causal, double scale) {
  check_same_cuda_device("scaled_dot_product_attention backward", q.device(), {&k, &v, &probs, &g, &dq, &dk, &dv});
  DeviceGuard guard(q.device().index);
  const int64_t L = probs.size(-2), S = probs.size(-1), rows = probs.numel() / S;
  const Tensor p = with_batch_dims_of(probs, q);  // (..., L, S), A
  const bool rounded = q.dtype() == DType::bf16 || q.dtype() == DType::f16;
  const TensorOptions t_opts = TensorOptions(q.dtype()).with_device(q.device());
  const TensorOptions a_opts = TensorOptions(probs.dtype()).with_device(q.device());
  {
    Tensor p_t = p;
    if (rounded) {
      p_t = Tensor::empty(p.shape(), t_opts);
      copy(p_t, p);
    }
    matmul(dv, p_t.transpose(-1, -2), g);  // (..., S, L) @ (..., L, Ev)
  }
  const Tensor dp = Tensor::empty(p.shape(), a_opts);  // dP, then dS
  matmul(dp, g, v.transpose(-1, -2));                  // (..., L, Ev) @ (..., Ev, S)
  const Tensor ds_t = rounded ? Tensor::empty(p.shape(), t_opts) : dp;
  dispatch_device_floating(q.dtype(), "scaled_dot_product_attention backward", [&](auto tag) {
    using T = decltype(tag);
    using A = device_acc_t<T>;
    T* dt = rounded ? static_cast<T*>(ds_t.raw_data()) : nullptr;
    softmax_grad_rows_kernel<A, T><<<row_blocks(rows), kRowThreads, 0, stream_of(dq)>>>(
        static_cast<const A*>(probs.raw_data()), static_cast<A*>(dp.raw_data()), dt, rows, L, S, causal,
        static_cast<A>(scale));
    COHORT_CUDA_CHECK_LAUNCH();
  });
  matmul(dq, ds_t, k);                   // (..., L, S) @ (..., S, E)
  matmul(dk, ds_t.transpose(-1, -2), q);  // (..., S, L) @ (..., L, E)
}

}  // namespace cohort::detail::cuda
