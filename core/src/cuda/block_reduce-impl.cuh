// Warp- and block-wide reductions for CUDA kernels (implementation-only; .cu files only).
//
//   __shared__ float scratch[kWarpSize];
//   float total = block_reduce_sum(partial, scratch);   // every thread of the block gets the total
//
// block_reduce_* must be called by every thread of the block (they synchronise), with a block
// of at most 1024 threads whose size is a multiple of 32; `scratch` holds one value per warp.
// The order of the additions is fixed by the block size, so a result is the same from run to run.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace cohort::detail::cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

// Lanes for a row of n elements in a row kernel: the smallest power of two >= n, at most a warp.
inline int lanes_for(int64_t n) {
  int l = 1;
  while (l < n && l < kWarpSize) l *= 2;
  return l;
}

// Sum over each aligned group of `lanes` threads (a power of two <= 32); the whole warp calls it.
template <class A>
__device__ __forceinline__ A group_sum(A v, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

template <class T>
__device__ __forceinline__ T warp_reduce_sum(T v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

// Max that propagates NaN (as the CPU ops do: a NaN anywhere makes the result NaN).
template <class T>
__device__ __forceinline__ T nan_max(T a, T b) {
  return (a != a || a > b) ? a : b;
}

template <class T>
__device__ __forceinline__ T warp_reduce_max(T v) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = nan_max(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// The sum over the block, returned to every thread.
template <class T>
__device__ __forceinline__ T block_reduce_sum(T v, T* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  v = warp_reduce_sum(v);
  __syncthreads();  // scratch may still be read from a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : T(0);
  return warp_reduce_sum(v);
}

// The NaN-propagating max over the block, returned to every thread; `lowest` is the identity.
template <class T>
__device__ __forceinline__ T block_reduce_max(T v, T* scratch, T lowest) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = (blockDim.x + kWarpSize - 1) / kWarpSize;
  v = warp_reduce_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : lowest;
  return warp_reduce_max(v);
}

// The sum of a row for a row kernel: within its group of lanes, or across the block when the row
// has a block to itself (lanes > 32).
template <class A>
__device__ __forceinline__ A row_sum(A v, int lanes, A* scratch) {
  return lanes <= kWarpSize ? group_sum(v, lanes) : block_reduce_sum(v, scratch);
}

}  // namespace cohort::detail::cuda
