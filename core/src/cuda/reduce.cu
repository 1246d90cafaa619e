// Sums and arg-extremes over one dim of a contiguous (outer, R, inner) tensor on CUDA, and the
// extreme's gradient scatter. See reduce-ops-impl.h for the contract.
//
// Two layouts, two kernels, each written once over a reduction policy (a thread's state, how an
// element is folded in, how two states combine, how a result is stored):
//
// - inner == 1, rows (sum over the last dims, max of a row, any full reduction): a group of
//   `lanes` consecutive threads owns a row. Rows of up to 1024 elements get the power of two
//   >= R up to 32 lanes (several rows per warp, shuffles within the group); longer rows get a
//   block of 512 threads. Lane k reads elements k, k + lanes, ...: a warp reads consecutive
//   elements.
// - inner > 1, columns (the bias gradient: sum over dim 0 of (N, C)): a block of bx * by = 256
//   threads owns bx neighbouring columns of one outer index, bx the power of two >= inner up to
//   32. Thread (tx, ty) walks rows ty, ty + by, ... of column tx, so a warp reads 32 / bx whole
//   rows of bx consecutive columns (contiguous memory), and the by states of a column are then
//   combined in shared memory.
//
// When rows (or column tiles) are too few to fill the GPU, R is cut into chunks: the first launch
// writes one partial state per (outer, chunk, inner) into a workspace, and a second launch of the
// same kernel reduces the chunks. The split depends only on the sizes and the device's
// multiprocessor count, so a result is the same from run to run on one kind of GPU.
//
// Sums of floating dtypes accumulate in double like the CPU's (sum.cpp): the GPU has the double
// adds to spare in a memory-bound kernel, and the result then matches the CPU to a few units in
// the last place of the element type. Only the order differs: per thread in index order, then a
// tree across threads (the CPU: 16 lanes, then in order).
#include <atomic>
#include <cstdint>
#include <type_traits>

#include "loops-impl.cuh"
#include "reduce-ops-impl.h"
#include "rows-impl.cuh"

namespace cohort::detail::cuda {

namespace {

constexpr int64_t kMinRowChunk = 8192;  // elements per block of a split row: 16 per thread at least

__host__ __device__ __forceinline__ int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }

int multiprocessors(int device) {
  static std::atomic<int> cache[64];
  if (device >= 0 && device < 64) {
    const int v = cache[device].load(std::memory_order_relaxed);
    if (v > 0) return v;
  }
  int n = 0;
  COHORT_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device));
  if (device >= 0 && device < 64) cache[device].store(n, std::memory_order_relaxed);
  return n > 0 ? n : 1;
}

// ---- policies ----

// Sum: the state is the accumulator (double for floats, int64 for i64). The second launch over
// the partial sums has In = Acc.
template <class In, class Acc, class Out>
struct SumPolicy {
  using State = Acc;
  const In* in;
  Out* out;      // results, when the launch is final
  Acc* partial;  // partial sums, when it is not
  Acc scale;

  __device__ __forceinline__ State identity() const { return Acc(0); }
  __device__ __forceinline__ State fold(State s, int64_t offset, int64_t) const {
    return s + static_cast<Acc>(to_acc(in[offset]));
  }
  __device__ __forceinline__ State combine(State a, State b) const { return a + b; }
  __device__ __forceinline__ static State shuffle_xor(State s, int lane_mask) {
    return __shfl_xor_sync(kFullMask, s, lane_mask);
  }
  __device__ __forceinline__ void store(int64_t index, State s, bool final) const {
    if (final) {
      // The CPU's T(acc * scale): doubles round to float first for the 16-bit types.
      out[index] = from_acc<Out>(static_cast<device_acc_t<Out>>(s * scale));
    } else {
      partial[index] = s;
    }
  }
};

template <class A>
struct ExtremeState {
  A v;
  int64_t i;  // the position along R; -1: no element seen
};

// Arg-extreme: the state is (value, position). precedes() is a total order, "NaN first (the lowest
// position among NaNs), then the larger (smaller) value, then the lower position", so combining
// states in any order and grouping finds what the CPU's in-order scan with beats() finds.
template <class T>
struct ExtremePolicy {
  using A = device_acc_t<T>;
  using State = ExtremeState<A>;
  const T* in;
  const int64_t* in_index;  // the second launch: the partial states' positions; else null
  T* values;
  int64_t* indices;
  T* part_values;
  int64_t* part_indices;
  bool is_max;

  __device__ __forceinline__ static bool is_nan(A v) {
    if constexpr (std::is_floating_point_v<A>) {
      return v != v;
    } else {
      return false;
    }
  }
  __device__ __forceinline__ bool precedes(const State& a, const State& b) const {
    if (a.i < 0) return false;
    if (b.i < 0) return true;
    const bool an = is_nan(a.v), bn = is_nan(b.v);
    if (an != bn) return an;
    if (!an && a.v != b.v) return is_max ? a.v > b.v : a.v < b.v;
    return a.i < b.i;
  }
  __device__ __forceinline__ State identity() const { return State{A(0), -1}; }
  __device__ __forceinline__ State fold(State s, int64_t offset, int64_t r) const {
    const State e{to_acc(in[offset]), in_index != nullptr ? in_index[offset] : r};
    return combine(s, e);
  }
  __device__ __forceinline__ State combine(const State& a, const State& b) const { return precedes(b, a) ? b : a; }
  __device__ __forceinline__ static State shuffle_xor(const State& s, int lane_mask) {
    State r;
    if constexpr (std::is_same_v<A, bool>) {
      r.v = __shfl_xor_sync(kFullMask, static_cast<int>(s.v), lane_mask) != 0;
    } else {
      r.v = __shfl_xor_sync(kFullMask, s.v, lane_mask);
    }
    r.i = __shfl_xor_sync(kFullMask, s.i, lane_mask);
    return r;
  }
  __device__ __forceinline__ void store(int64_t index, const State& s, bool final) const {
    if (final) {
      values[index] = from_acc<T>(s.v);  // exact: s.v was loaded from a T
      indices[index] = s.i;
    } else {
      part_values[index] = from_acc<T>(s.v);
      part_indices[index] = s.i;
    }
  }
};

// ---- group and block combination ----

// Combines the states of each aligned group of `lanes` threads (a power of two <= 32) of every
// warp; every thread of the warp must call it. Every lane of a group gets the group's state.
template <class P>
__device__ __forceinline__ typename P::State group_reduce(const P& p, typename P::State s, int lanes) {
  for (int offset = lanes / 2; offset > 0; offset /= 2) s = p.combine(s, P::shuffle_xor(s, offset));
  return s;
}

// Combines the states of the whole block (a multiple of 32 threads, at most 1024); every thread
// must call it and gets the result. scratch holds kWarpSize states.
template <class P>
__device__ __forceinline__ typename P::State block_reduce(const P& p, typename P::State s,
                                                          typename P::State* scratch) {
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int warps = blockDim.x / kWarpSize;
  s = group_reduce(p, s, kWarpSize);
  __syncthreads();  // scratch may still be read from the previous row
  if (lane == 0) scratch[warp] = s;
  __syncthreads();
  s = lane < warps ? scratch[lane] : p.identity();
  return group_reduce(p, s, kWarpSize);
}

// ---- kernels ----

// in (rows, n) -> one state per segment (row, chunk of chunk_len elements). `lanes` threads per
// segment: a power of two <= 32, or blockDim.x. Final (chunks == 1): stored at the row; else at
// row * chunks + chunk, the workspace (rows, chunks).
template <class P>
__global__ void __launch_bounds__(kLongRowThreads)
    reduce_rows_kernel(P p, int64_t rows, int64_t n, int64_t chunks, int64_t chunk_len, int lanes) {
  using State = typename P::State;
  __shared__ State scratch[kWarpSize];
  const int groups = blockDim.x / lanes;
  const int group = threadIdx.x / lanes, lane = threadIdx.x % lanes;
  const int64_t segments = rows * chunks;
  const bool final = chunks == 1;
  // first is the same for every thread of the block: all of them run the same iterations, which
  // the shuffles and block_reduce's barriers need.
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * groups; first < segments;
       first += static_cast<int64_t>(gridDim.x) * groups) {
    const int64_t seg = first + group;
    State s = p.identity();
    if (seg < segments) {
      const int64_t row = seg / chunks;
      const int64_t lo = (seg - row * chunks) * chunk_len, hi = imin(n, lo + chunk_len);
      const int64_t base = row * n;
#pragma unroll 4
      for (int64_t k = lo + lane; k < hi; k += lanes) s = p.fold(s, base + k, k);
    }
    s = lanes <= kWarpSize ? group_reduce(p, s, lanes) : block_reduce(p, s, scratch);
    if (seg < segments && lane == 0) p.store(seg, s, final);
  }
}

// in (outer, R, inner) -> one state per (outer, chunk, column). Block (bx, by), bx * by =
// kColThreads, by a power of two. Final (chunks == 1): stored at o * inner + col; else at
// (o * chunks + chunk) * inner + col, the workspace (outer, chunks, inner).
template <class P>
__global__ void __launch_bounds__(kColThreads)
    reduce_cols_kernel(P p, int64_t outer, int64_t R, int64_t inner, int64_t chunks, int64_t chunk_len) {
  using State = typename P::State;
  __shared__ State tile[kColThreads];
  const int bx = blockDim.x, by = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int64_t tiles = (inner + bx - 1) / bx;
  const int64_t segments = outer * chunks * tiles;
  const bool final = chunks == 1;
  State* mine = tile + ty * bx + tx;
  for (int64_t seg = blockIdx.x; seg < segments; seg += gridDim.x) {  // the same for the whole block
    const int64_t t = seg % tiles, oc = seg / tiles;  // oc = o * chunks + chunk
    const int64_t o = oc / chunks, c = oc - o * chunks;
    const int64_t col = t * bx + tx;
    State s = p.identity();
    if (col < inner) {
      const int64_t lo = c * chunk_len, hi = imin(R, lo + chunk_len);
#pragma unroll 4
      for (int64_t r = lo + ty; r < hi; r += by) s = p.fold(s, (o * R + r) * inner + col, r);
    }
    *mine = s;
    __syncthreads();
    for (int h = by / 2; h > 0; h /= 2) {
      if (ty < h) *mine = p.combine(*mine, mine[h * bx]);  // reads rows >= h, which nobody writes now
      __syncthreads();
    }
    if (ty == 0 && col < inner) p.store((final ? o : oc) * inner + col, *mine, final);
    __syncthreads();  // tile is overwritten by the next segment
  }
}

template <class T>
__global__ void scatter_kernel(T* __restrict__ out, const T* __restrict__ src, const int64_t* __restrict__ idx,
                               int64_t n, int64_t R, int64_t inner) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t p = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; p < n; p += stride) {
    const int64_t o = p / inner, i = p - o * inner;
    out[(o * R + idx[p]) * inner + i] = src[p];
  }
}

// ---- launch geometry ----

struct RowSplit {
  int lanes = 1, threads = kRowThreads;
  int64_t chunks = 1, chunk_len = 0;
};

// How (rows, n) is cut: short rows one group each; long rows one block each, and into chunks of
// at least kMinRowChunk elements when there are fewer rows than 4 blocks per multiprocessor.
RowSplit split_rows(int64_t rows, int64_t n, int sms, bool allow_split) {
  RowSplit s;
  s.chunk_len = n;
  if (n <= kShortRow) {
    s.lanes = lanes_for(n);
    return s;
  }
  s.lanes = s.threads = kLongRowThreads;
  if (!allow_split) return s;
  const int64_t wanted = ceil_div(static_cast<int64_t>(sms) * 4, rows);
  const int64_t chunks = imin(imin(wanted, ceil_div(n, kMinRowChunk)), kShortRow);  // the 2nd pass: short rows
  if (chunks <= 1) return s;
  s.chunk_len = ceil_div(n, chunks);
  s.chunks = ceil_div(n, s.chunk_len);  // no empty chunk
  return s;
}

struct ColSplit {
  int bx = 1, by = kColThreads;
  int64_t chunks = 1, chunk_len = 0;
};

// How (outer, R, inner) is cut: bx columns per block, and R into chunks of at least
// max(64, 8 * by) rows when there are fewer column tiles than 8 blocks per multiprocessor.
ColSplit split_cols(int64_t outer, int64_t R, int64_t inner, int sms, bool allow_split) {
  ColSplit s;
  s.bx = lanes_for(inner);
  s.by = kColThreads / s.bx;
  s.chunk_len = R;
  if (!allow_split || R == 0) return s;
  const int64_t tiles = outer * ceil_div(inner, s.bx);
  const int64_t min_rows = s.by * 8 > 64 ? s.by * 8 : 64;
  const int64_t chunks = imin(ceil_div(static_cast<int64_t>(sms) * 8, tiles), ceil_div(R, min_rows));
  if (chunks <= 1) return s;
  s.chunk_len = ceil_div(R, chunks);
  s.chunks = ceil_div(R, s.chunk_len);
  return s;
}

template <class P>
void launch_rows(const P& p, int64_t rows, int64_t n, const RowSplit& s, cudaStream_t stream) {
  const int64_t groups = s.threads / s.lanes;
  const int64_t blocks = imin(ceil_div(rows * s.chunks, groups), kMaxGrid);
  reduce_rows_kernel<P><<<static_cast<unsigned>(blocks), s.threads, 0, stream>>>(p, rows, n, s.chunks, s.chunk_len,
                                                                                  s.lanes);
  COHORT_CUDA_CHECK_LAUNCH();
}

template <class P>
void launch_cols(const P& p, int64_t outer, int64_t R, int64_t inner, const ColSplit& s, cudaStream_t stream) {
  const int64_t blocks = imin(outer * s.chunks * ceil_div(inner, s.bx), kMaxGrid);
  const dim3 block(static_cast<unsigned>(s.bx), static_cast<unsigned>(s.by));
  reduce_cols_kernel<P><<<static_cast<unsigned>(blocks), block, 0, stream>>>(p, outer, R, inner, s.chunks,
                                                                             s.chunk_len);
  COHORT_CUDA_CHECK_LAUNCH();
}

// out = scale * the sum over R of in (outer, R, inner); through a workspace of partial sums (in
// Acc) when R is split, which a second launch of the same kernel (In = Acc) reduces.
template <class T, class Acc>
void sum_typed(const Tensor& out, const Tensor& in, int64_t outer, int64_t R, int64_t inner, double scale) {
  const int device = out.device().index;
  DeviceGuard guard(device);
  const cudaStream_t stream = stream_of(out);
  const int sms = multiprocessors(device);
  const T* ip = static_cast<const T*>(in.raw_data());
  T* op = static_cast<T*>(out.raw_data());
  const Acc sc = static_cast<Acc>(scale);
  constexpr DType acc_dtype = std::is_same_v<Acc, double> ? DType::f64 : DType::i64;
  if (inner == 1) {
    const RowSplit s = split_rows(outer, R, sms, true);
    if (s.chunks == 1) {
      launch_rows(SumPolicy<T, Acc, T>{ip, op, nullptr, sc}, outer, R, s, stream);
      return;
    }
    const Tensor part = Tensor::empty({outer * s.chunks}, TensorOptions(acc_dtype).with_device(out.device()));
    Acc* pp = static_cast<Acc*>(part.raw_data());
    launch_rows(SumPolicy<T, Acc, T>{ip, nullptr, pp, sc}, outer, R, s, stream);
    launch_rows(SumPolicy<Acc, Acc, T>{pp, op, nullptr, sc}, outer, s.chunks, split_rows(outer, s.chunks, sms, false),
                stream);
    return;
  }
  const ColSplit s = split_cols(outer, R, inner, sms, true);
  if (s.chunks == 1) {
    launch_cols(SumPolicy<T, Acc, T>{ip, op, nullptr, sc}, outer, R, inner, s, stream);
    return;
  }
  const Tensor part = Tensor::empty({outer * s.chunks * inner}, TensorOptions(acc_dtype).with_device(out.device()));
  Acc* pp = static_cast<Acc*>(part.raw_data());
  launch_cols(SumPolicy<T, Acc, T>{ip, nullptr, pp, sc}, outer, R, inner, s, stream);
  launch_cols(SumPolicy<Acc, Acc, T>{pp, op, nullptr, sc}, outer, s.chunks, inner,
              split_cols(outer, s.chunks, inner, sms, false), stream);
  // `part` is released here while the kernels may still run: the caching allocator hands it out
  // again only in stream order.
}

// values, indices = the first extreme along R of in (outer, R, inner); when R is split, through
// partial (value, position) pairs that the second launch reads with their positions.
template <class T>
void extreme_typed(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t outer, int64_t R,
                   int64_t inner, bool is_max) {
  const int device = values.device().index;
  DeviceGuard guard(device);
  const cudaStream_t stream = stream_of(values);
  const int sms = multiprocessors(device);
  const T* ip = static_cast<const T*>(in.raw_data());
  T* vp = static_cast<T*>(values.raw_data());
  int64_t* xp = indices.data_ptr<int64_t>();
  const TensorOptions on_device = TensorOptions(in.dtype()).with_device(in.device());
  const TensorOptions index_on_device = TensorOptions(DType::i64).with_device(in.device());
  if (inner == 1) {
    const RowSplit s = split_rows(outer, R, sms, true);
    if (s.chunks == 1) {
      launch_rows(ExtremePolicy<T>{ip, nullptr, vp, xp, nullptr, nullptr, is_max}, outer, R, s, stream);
      return;
    }
    const Tensor pv = Tensor::empty({outer * s.chunks}, on_device), px = Tensor::empty({outer * s.chunks}, index_on_device);
    T* pvp = static_cast<T*>(pv.raw_data());
    int64_t* pxp = px.data_ptr<int64_t>();
    launch_rows(ExtremePolicy<T>{ip, nullptr, nullptr, nullptr, pvp, pxp, is_max}, outer, R, s, stream);
    launch_rows(ExtremePolicy<T>{pvp, pxp, vp, xp, nullptr, nullptr, is_max}, outer, s.chunks,
                split_rows(outer, s.chunks, sms, false), stream);
    return;
  }
  const ColSplit s = split_cols(outer, R, inner, sms, true);
  if (s.chunks == 1) {
    launch_cols(ExtremePolicy<T>{ip, nullptr, vp, xp, nullptr, nullptr, is_max}, outer, R, inner, s, stream);
    return;
  }
  const int64_t np = outer * s.chunks * inner;
  const Tensor pv = Tensor::empty({np}, on_device), px = Tensor::empty({np}, index_on_device);
  T* pvp = static_cast<T*>(pv.raw_data());
  int64_t* pxp = px.data_ptr<int64_t>();
  launch_cols(ExtremePolicy<T>{ip, nullptr, nullptr, nullptr, pvp, pxp, is_max}, outer, R, inner, s, stream);
  launch_cols(ExtremePolicy<T>{pvp, pxp, vp, xp, nullptr, nullptr, is_max}, outer, s.chunks, inner,
              split_cols(outer, s.chunks, inner, sms, false), stream);
}

}  // namespace

void sum(const Tensor& out, const Tensor& in, int64_t outer, int64_t reduced, int64_t inner, double scale) {
  if (outer * inner == 0) return;
  if (in.dtype() == DType::i64) {
    sum_typed<int64_t, int64_t>(out, in, outer, reduced, inner, scale);
    return;
  }
  dispatch_device_floating(in.dtype(), "sum", [&](auto tag) {
    sum_typed<decltype(tag), double>(out, in, outer, reduced, inner, scale);
  });
}

void extreme(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t outer, int64_t reduced,
             int64_t inner, bool is_max) {
  if (outer * inner == 0) return;
  dispatch_device(in.dtype(), is_max ? "max" : "min", [&](auto tag) {
    extreme_typed<decltype(tag)>(values, indices, in, outer, reduced, inner, is_max);
  });
}

void scatter_extreme_grad(const Tensor& out, const Tensor& src, const Tensor& indices, int64_t outer,
                          int64_t reduced, int64_t inner) {
  const int64_t n = outer * inner;
  if (n == 0) return;
  dispatch_device_floating(out.dtype(), "backward", [&](auto tag) {
    using T = decltype(tag);
    DeviceGuard guard(out.device().index);
    const int64_t blocks = grid_blocks(n, kElementwiseThreads);
    scatter_kernel<T><<<static_cast<unsigned>(blocks), kElementwiseThreads, 0, stream_of(out)>>>(
        static_cast<T*>(out.raw_data()), static_cast<const T*>(src.raw_data()), indices.data_ptr<int64_t>(), n,
        reduced, inner);
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace cohort::detail::cuda
