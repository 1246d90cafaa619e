// Device code of the fused attention (flash_attention.cu launches it): the tile geometry, the
// shared-memory layout and the forward, delta and backward kernels.
//
//   forward (a block of 4 warps per 64 query rows of one batch entry; warp w owns rows 16w..16w+15):
//     for each tile of 64 keys (causal: only those at or left of the block's last row):
//       S = Q K^T                      WMMA, into shared memory (f32)
//       online softmax of scale * S    per row: running max m and sum l in registers, P in T,
//                                      the row's output accumulator rescaled by exp(m_old - m_new)
//       O += P V                       WMMA, accumulator kept in shared memory (f32)
//     out = O / l, lse = m + log(l)    (lse, batch x L in f32, is all backward needs of softmax)
//   backward (a block per 64 keys; loops over the query tiles that see them):
//       S = Q K^T, dP = dO V^T         WMMA
//       P = exp(scale S - lse), dS = scale P (dP - D)    with D = rowsum(dO * out), a pre-pass
//       dV += P^T dO, dK += dS^T Q     WMMA, accumulators in shared memory (f32)
//       dQ += dS K                     WMMA, added with atomics to an f32 (batch, L, E) buffer
//
// P and dS are rounded to T for the products that use them, as the unfused path does; the sums
// (l, the accumulators) stay in f32. Shared memory rows are padded by 16 bytes against bank
// conflicts; WMMA needs 32-byte aligned fragment pointers, which every offset here is (asserted).
//
// Two compilers read this file: nvcc, through flash_attention.cu, and the host compiler, through
// tests/emulation/flash_attention_emulated.cpp, which runs these kernels on the CPU (every CUDA
// thread a fiber) against a float64 reference on every CI build. Its tests/emulation/cuda_emulation.h
// defines COHORT_CUDA_EMULATION and all the CUDA names used here: nvcuda::wmma, __nv_bfloat16 and
// __half, to_acc/from_acc, warp_reduce_max/sum, kWarpSize, threadIdx/blockIdx, __syncthreads,
// __syncwarp, atomicAdd, expf/logf/fmaxf/INFINITY, the __global__/__device__/__forceinline__/
// __launch_bounds__ qualifiers, and COHORT_DYNAMIC_SMEM (the kernels' dynamic shared memory, the
// one spelling here that is not plain CUDA: extern __shared__ has no host equivalent). A kernel
// edit that uses another CUDA name must add it there too; the emulation build fails until it does.
// The unnamed namespace is deliberate: this is the device half of one translation unit.
#pragma once

#include <cstdint>
#include <type_traits>

#ifndef COHORT_CUDA_EMULATION
#include <mma.h>

#include <cmath>

#include "block_reduce-impl.cuh"
#include "loops-impl.cuh"

// Declares `name`, the block's dynamic shared memory, as a 128-byte aligned char array.
#define COHORT_DYNAMIC_SMEM(name) extern __shared__ __align__(128) char name[]
#endif

namespace cohort::detail::cuda {

namespace {

namespace wmma = nvcuda::wmma;

constexpr int kTile = 64;                 // query rows of a forward block, keys of a backward block
constexpr int kWarps = 4;                 // each owns 16 rows of a tile
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kMaxBatchDims = 4;

// Where batch entry b's (rows, E) matrix starts in a tensor (..., rows, E) with any batch strides.
struct BatchLayout {
  int ndim = 0;
  int64_t sizes[kMaxBatchDims] = {};
  int64_t strides[kMaxBatchDims] = {};
  int64_t row_stride = 0;
  __device__ __forceinline__ int64_t offset(int64_t b) const {
    int64_t off = 0;
#pragma unroll
    for (int d = kMaxBatchDims - 1; d >= 0; --d) {  // unrolled: the arrays stay in parameter space
      if (d < ndim) {
        off += (b % sizes[d]) * strides[d];
        b /= sizes[d];
      }
    }
    return off;
  }
};

// Shared-memory geometry of one head size E: padded leading dims (elements) and byte offsets.
template <int E>
struct Smem {
  static constexpr int ldt = E + 8;        // a (64, E) tile in T
  static constexpr int ldf = E + 4;        // a (64, E) accumulator in f32
  static constexpr int lds = kTile + 4;    // (64, 64) scores in f32
  static constexpr int ldp = kTile + 8;    // (64, 64) P or dS in T
  static constexpr int tile_t = kTile * ldt * 2;
  static constexpr int tile_f = kTile * ldf * 4;
  static constexpr int scores_f = kTile * lds * 4;
  static constexpr int probs_t = kTile * ldp * 2;
  static constexpr int scratch = kWarps * 16 * 20 * 4;  // one 16x16 f32 fragment per warp, ld 20
  // forward: Q, K, V (T), S (f32), P (T), O (f32)
  static constexpr int fwd_bytes = 3 * tile_t + scores_f + probs_t + tile_f;
  // backward: K, V, Q, dO (T), dK, dV (f32), S, dP (f32), P, dS (T), dQ scratch, lse and D rows
  static constexpr int bwd_bytes = 4 * tile_t + 2 * tile_f + 2 * scores_f + 2 * probs_t + scratch + 2 * kTile * 4;
  static_assert(tile_t % 32 == 0 && tile_f % 32 == 0 && scores_f % 32 == 0 && probs_t % 32 == 0 && scratch % 32 == 0,
                "WMMA fragment pointers must stay 32-byte aligned");
  static_assert((16 * ldt * 2) % 32 == 0 && (16 * ldf * 4) % 32 == 0 && (16 * lds * 4) % 32 == 0 &&
                    (16 * ldp * 2) % 32 == 0,
                "a warp's 16-row band must start 32-byte aligned");
};

template <class T> struct WmmaType;
template <> struct WmmaType<__nv_bfloat16> { using type = __nv_bfloat16; };
template <> struct WmmaType<__half> { using type = __half; };

// Copies rows [row0, row0 + 64) x E of batch entry b of `src` into a padded (64, ld) tile; rows
// past `rows` are zero.
template <class T, int E>
__device__ __forceinline__ void load_tile(T* tile, int ld, const T* src, const BatchLayout& l, int64_t b, int64_t row0,
                                          int64_t rows) {
  const T* base = src + l.offset(b);
  for (int idx = threadIdx.x; idx < kTile * E; idx += kThreads) {
    const int r = idx / E, c = idx % E;
    const int64_t row = row0 + r;
    tile[r * ld + c] = row < rows ? base[row * l.row_stride + c] : from_acc<T>(0.0f);
  }
}

// acc (16 x 16 f32) = sum over k of a (16 x K, row-major T at a, lda) * b; b is (K x 16): B_COL
// means b[k][n] is at b + n * ldb + k (a transposed row-major matrix), else at b + k * ldb + n.
template <class T, int K, bool B_COL, class Acc>
__device__ __forceinline__ void mma_row(Acc& acc, const T* a, int lda, const T* b, int ldb) {
  using W = typename WmmaType<T>::type;
  using BLayout = std::conditional_t<B_COL, wmma::col_major, wmma::row_major>;
#pragma unroll
  for (int k = 0; k < K; k += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, W, BLayout> fb;
    wmma::load_matrix_sync(fa, reinterpret_cast<const W*>(a + k), lda);
    wmma::load_matrix_sync(fb, reinterpret_cast<const W*>(B_COL ? b + k : b + k * ldb), ldb);
    wmma::mma_sync(acc, fa, fb, acc);
  }
}

// The same with a transposed a: a[m][k] is at a + k * lda + m (a^T of a row-major matrix).
template <class T, int K, class Acc>
__device__ __forceinline__ void mma_rowT(Acc& acc, const T* a, int lda, const T* b, int ldb) {
  using W = typename WmmaType<T>::type;
#pragma unroll
  for (int k = 0; k < K; k += 16) {
    wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::col_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::row_major> fb;
    wmma::load_matrix_sync(fa, reinterpret_cast<const W*>(a + k * lda), lda);
    wmma::load_matrix_sync(fb, reinterpret_cast<const W*>(b + k * ldb), ldb);
    wmma::mma_sync(acc, fa, fb, acc);
  }
}

using Acc = wmma::fragment<wmma::accumulator, 16, 16, 16, float>;

// A warp's 16-row band of a (64, 64) f32 tile: dst (16 x 64, ld lds) = a (16 x E, row-major T)
// times b^T, b a (64, E) row-major tile in T, all with leading dim ld (S = Q K^T, dP = dO V^T).
template <class T, int E>
__device__ __forceinline__ void band_times_tile_T(float* dst, int lds, const T* a, const T* b, int ld) {
#pragma unroll
  for (int n = 0; n < kTile; n += 16) {
    Acc acc;
    wmma::fill_fragment(acc, 0.0f);
    mma_row<T, E, true>(acc, a, ld, b + n * ld, ld);
    wmma::store_matrix_sync(dst + n, acc, lds, wmma::mem_row_major);
  }
}

template <class T, int E>
__global__ void __launch_bounds__(kThreads) flash_forward_kernel(const T* q, const T* k, const T* v, T* out, float* lse,
                                                                 BatchLayout lq, BatchLayout lk, BatchLayout lv,
                                                                 BatchLayout lo, int64_t L, int64_t S, int64_t q_tiles,
                                                                 bool causal, float scale) {
  using G = Smem<E>;
  COHORT_DYNAMIC_SMEM(smem);
  T* qs = reinterpret_cast<T*>(smem);
  T* ks = reinterpret_cast<T*>(smem + G::tile_t);
  T* vs = reinterpret_cast<T*>(smem + 2 * G::tile_t);
  float* ss = reinterpret_cast<float*>(smem + 3 * G::tile_t);
  T* ps = reinterpret_cast<T*>(smem + 3 * G::tile_t + G::scores_f);
  float* os = reinterpret_cast<float*>(smem + 3 * G::tile_t + G::scores_f + G::probs_t);

  const int64_t b = blockIdx.x / q_tiles;
  const int64_t q0 = (blockIdx.x % q_tiles) * kTile;
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int r0 = warp * 16;  // this warp's rows in the tile

  load_tile<T, E>(qs, G::ldt, q, lq, b, q0, L);
  for (int idx = threadIdx.x; idx < kTile * G::ldf; idx += kThreads) os[idx] = 0.0f;
  float m[16], l[16];
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
  }
  // Keys j <= i <= q0 + 63 when causal.
  const int64_t key_end = causal ? (q0 + kTile < S ? q0 + kTile : S) : S;
  for (int64_t k0 = 0; k0 < key_end; k0 += kTile) {
    __syncthreads();  // the previous tile's K and V are no longer read
    load_tile<T, E>(ks, G::ldt, k, lk, b, k0, S);
    load_tile<T, E>(vs, G::ldt, v, lv, b, k0, S);
    __syncthreads();
    // S rows r0.. = Q rows r0.. K^T
    band_times_tile_T<T, E>(ss + r0 * G::lds, G::lds, qs + r0 * G::ldt, ks, G::ldt);
    __syncwarp();
    // Online softmax over this tile's columns (lane: columns lane and lane + 32).
#pragma unroll
    for (int r = 0; r < 16; ++r) {
      const int row = r0 + r;
      const int64_t i = q0 + row;
      const int64_t j0 = k0 + lane, j1 = k0 + lane + 32;
      const bool ok0 = j0 < S && (!causal || j0 <= i), ok1 = j1 < S && (!causal || j1 <= i);
      const float s0 = ok0 ? ss[row * G::lds + lane] * scale : -INFINITY;
      const float s1 = ok1 ? ss[row * G::lds + lane + 32] * scale : -INFINITY;
      const float mx = warp_reduce_max(fmaxf(s0, s1));
      const float m_new = fmaxf(m[r], mx);
      float p0 = 0.0f, p1 = 0.0f, alpha = 1.0f;
      if (m_new != -INFINITY) {  // else no key seen yet: nothing to add, nothing to rescale
        p0 = ok0 ? expf(s0 - m_new) : 0.0f;
        p1 = ok1 ? expf(s1 - m_new) : 0.0f;
        alpha = expf(m[r] - m_new);  // 0 when m[r] is -inf
      }
      const float sum = warp_reduce_sum(p0 + p1);
      l[r] = l[r] * alpha + sum;
      m[r] = m_new;
      ps[row * G::ldp + lane] = from_acc<T>(p0);
      ps[row * G::ldp + lane + 32] = from_acc<T>(p1);
#pragma unroll
      for (int c = lane; c < E; c += kWarpSize) os[row * G::ldf + c] *= alpha;
    }
    __syncwarp();
    // O rows r0.. += P rows r0.. V
#pragma unroll
    for (int n = 0; n < E; n += 16) {
      Acc acc;
      wmma::load_matrix_sync(acc, os + r0 * G::ldf + n, G::ldf, wmma::mem_row_major);
      mma_row<T, kTile, false>(acc, ps + r0 * G::ldp, G::ldp, vs + n, G::ldt);
      wmma::store_matrix_sync(os + r0 * G::ldf + n, acc, G::ldf, wmma::mem_row_major);
    }
  }
  __syncwarp();
  const int64_t ob = lo.offset(b);
#pragma unroll
  for (int r = 0; r < 16; ++r) {
    const int64_t i = q0 + r0 + r;
    if (i >= L) break;
    // Every query row sees key 0 (causal: j <= i), so l > 0.
    const float inv = 1.0f / l[r];
    for (int c = lane; c < E; c += kWarpSize) out[ob + i * lo.row_stride + c] = from_acc<T>(os[(r0 + r) * G::ldf + c] * inv);
    if (lane == 0) lse[b * L + i] = m[r] + logf(l[r]);
  }
}

// D[b, i] = sum over c of dO[b, i, c] * out[b, i, c], in f32: one warp per row.
template <class T>
__global__ void flash_delta_kernel(const T* g, const T* out, float* delta, BatchLayout lg, BatchLayout lo, int64_t L,
                                   int64_t E, int64_t rows) {
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) return;  // the whole warp
  const int64_t b = row / L, i = row % L;
  const T* gr = g + lg.offset(b) + i * lg.row_stride;
  const T* orow = out + lo.offset(b) + i * lo.row_stride;
  float s = 0.0f;
  for (int64_t c = lane; c < E; c += kWarpSize) s += to_acc(gr[c]) * to_acc(orow[c]);
  s = warp_reduce_sum(s);
  if (lane == 0) delta[row] = s;
}

template <class T, int E>
__global__ void __launch_bounds__(kThreads) flash_backward_kernel(const T* q, const T* k, const T* v, const T* g,
                                                                  const float* lse, const float* delta, float* dq_acc,
                                                                  T* dk, T* dv, BatchLayout lq, BatchLayout lk,
                                                                  BatchLayout lv, BatchLayout lg, BatchLayout ldk,
                                                                  BatchLayout ldv, int64_t L, int64_t S,
                                                                  int64_t k_tiles, bool causal, float scale) {
  using G = Smem<E>;
  COHORT_DYNAMIC_SMEM(smem);
  char* at = smem;
  T* ks = reinterpret_cast<T*>(at);
  T* vs = reinterpret_cast<T*>(at += G::tile_t);
  T* qs = reinterpret_cast<T*>(at += G::tile_t);
  T* gs = reinterpret_cast<T*>(at += G::tile_t);
  float* dks = reinterpret_cast<float*>(at += G::tile_t);
  float* dvs = reinterpret_cast<float*>(at += G::tile_f);
  float* ss = reinterpret_cast<float*>(at += G::tile_f);
  float* dps = reinterpret_cast<float*>(at += G::scores_f);
  T* ps = reinterpret_cast<T*>(at += G::scores_f);
  T* dss = reinterpret_cast<T*>(at += G::probs_t);
  float* scratch = reinterpret_cast<float*>(at += G::probs_t);
  float* lse_s = reinterpret_cast<float*>(at += G::scratch);
  float* delta_s = lse_s + kTile;

  const int64_t b = blockIdx.x / k_tiles;
  const int64_t k0 = (blockIdx.x % k_tiles) * kTile;
  const int warp = threadIdx.x / kWarpSize, lane = threadIdx.x % kWarpSize;
  const int r0 = warp * 16;

  load_tile<T, E>(ks, G::ldt, k, lk, b, k0, S);
  load_tile<T, E>(vs, G::ldt, v, lv, b, k0, S);
  for (int idx = threadIdx.x; idx < kTile * G::ldf; idx += kThreads) {
    dks[idx] = 0.0f;
    dvs[idx] = 0.0f;
  }
  // Query rows that see key k0 or later: all of them, or (causal) rows i >= k0.
  const int64_t first_q = causal ? (k0 / kTile) * kTile : 0;
  for (int64_t q0 = first_q; q0 < L; q0 += kTile) {
    __syncthreads();  // the previous query tile is no longer read
    load_tile<T, E>(qs, G::ldt, q, lq, b, q0, L);
    load_tile<T, E>(gs, G::ldt, g, lg, b, q0, L);
    for (int r = threadIdx.x; r < kTile; r += kThreads) {
      const int64_t i = q0 + r;
      lse_s[r] = i < L ? lse[b * L + i] : INFINITY;  // exp(s - inf) = 0: padding rows add nothing
      delta_s[r] = i < L ? delta[b * L + i] : 0.0f;
    }
    __syncthreads();
    // S = Q K^T and dP = dO V^T, rows r0..
    band_times_tile_T<T, E>(ss + r0 * G::lds, G::lds, qs + r0 * G::ldt, ks, G::ldt);
    band_times_tile_T<T, E>(dps + r0 * G::lds, G::lds, gs + r0 * G::ldt, vs, G::ldt);
    __syncwarp();
    // P = exp(scale S - lse) (masked), dS = scale P (dP - D), both rounded to T.
#pragma unroll 4
    for (int r = 0; r < 16; ++r) {
      const int row = r0 + r;
      const int64_t i = q0 + row;
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int col = lane + 32 * h;
        const int64_t j = k0 + col;
        const bool ok = i < L && j < S && (!causal || j <= i);
        const float p = ok ? expf(ss[row * G::lds + col] * scale - lse_s[row]) : 0.0f;
        const float ds = p * (dps[row * G::lds + col] - delta_s[row]) * scale;
        ps[row * G::ldp + col] = from_acc<T>(p);
        dss[row * G::ldp + col] = from_acc<T>(ds);
      }
    }
    __syncthreads();  // dV and dK read every row of P and dS
    // dV rows r0.. (keys) += P^T dO, dK rows r0.. += dS^T Q
#pragma unroll
    for (int n = 0; n < E; n += 16) {
      Acc acc;
      wmma::load_matrix_sync(acc, dvs + r0 * G::ldf + n, G::ldf, wmma::mem_row_major);
      mma_rowT<T, kTile>(acc, ps + r0, G::ldp, gs + n, G::ldt);
      wmma::store_matrix_sync(dvs + r0 * G::ldf + n, acc, G::ldf, wmma::mem_row_major);
      wmma::load_matrix_sync(acc, dks + r0 * G::ldf + n, G::ldf, wmma::mem_row_major);
      mma_rowT<T, kTile>(acc, dss + r0, G::ldp, qs + n, G::ldt);
      wmma::store_matrix_sync(dks + r0 * G::ldf + n, acc, G::ldf, wmma::mem_row_major);
    }
    // dQ rows r0.. (queries) += dS K, through this warp's scratch fragment into dq_acc.
    float* mine = scratch + warp * 16 * 20;
#pragma unroll
    for (int n = 0; n < E; n += 16) {
      Acc acc;
      wmma::fill_fragment(acc, 0.0f);
      mma_row<T, kTile, false>(acc, dss + r0 * G::ldp, G::ldp, ks + n, G::ldt);
      wmma::store_matrix_sync(mine, acc, 20, wmma::mem_row_major);
      __syncwarp();
#pragma unroll
      for (int e = lane; e < 256; e += kWarpSize) {
        const int r = e / 16, c = e % 16;
        const int64_t i = q0 + r0 + r;
        if (i < L) atomicAdd(dq_acc + (b * L + i) * E + n + c, mine[r * 20 + c]);
      }
      __syncwarp();
    }
  }
  __syncthreads();
  const int64_t kb = ldk.offset(b), vb = ldv.offset(b);
  for (int idx = threadIdx.x; idx < kTile * E; idx += kThreads) {
    const int r = idx / E, c = idx % E;
    const int64_t j = k0 + r;
    if (j >= S) continue;
    dk[kb + j * ldk.row_stride + c] = from_acc<T>(dks[r * G::ldf + c]);
    dv[vb + j * ldv.row_stride + c] = from_acc<T>(dvs[r * G::ldf + c]);
  }
}

}  // namespace

}  // namespace cohort::detail::cuda
