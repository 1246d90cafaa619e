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

namespace cohort::detail::cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

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

}  // namespace cohort::detail::cuda
