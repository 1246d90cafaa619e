// Row kernels (softmax, layer norm, sums over the last dim): how a row of n elements maps onto
// threads (implementation-only; .cu files only).
//
// A row of at most kShortRow elements gets a group of `lanes` threads (the smallest power of two
// >= n, at most a warp), several rows per block of kRowThreads; a longer row gets a block of
// kLongRowThreads to itself. Grids stop at kMaxGrid blocks and the kernels loop beyond that.
#pragma once

#include <cstdint>

#include "block_reduce-impl.cuh"

namespace cohort::detail::cuda {

constexpr int kRowThreads = 256;      // short rows: kRowThreads / lanes rows per block
constexpr int kLongRowThreads = 512;  // a longer row per block
constexpr int64_t kShortRow = 1024;
constexpr int kColThreads = 256;      // column kernels: bx * by threads
constexpr int64_t kMaxGrid = 65536;   // the kernels loop (grid-stride) beyond this

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

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

// The sum of a row for a row kernel: within its group of lanes, or across the block when the row
// has a block to itself (lanes > 32).
template <class A>
__device__ __forceinline__ A row_sum(A v, int lanes, A* scratch) {
  return lanes <= kWarpSize ? group_sum(v, lanes) : block_reduce_sum(v, scratch);
}

struct RowLaunch {
  int lanes, threads;
  unsigned blocks;
};

inline RowLaunch row_launch(int64_t rows, int64_t n) {
  RowLaunch r;
  if (n <= kShortRow) {
    r.lanes = lanes_for(n);
    r.threads = kRowThreads;
  } else {
    r.lanes = r.threads = kLongRowThreads;
  }
  const int64_t blocks = ceil_div(rows, r.threads / r.lanes);
  r.blocks = static_cast<unsigned>(blocks < kMaxGrid ? blocks : kMaxGrid);
  return r;
}

}  // namespace cohort::detail::cuda
