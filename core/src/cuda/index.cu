// Indexing and joining on CUDA tensors: index_select, index_add, gather, scatter_add and cat's
// slice copies. See index-ops-impl.h for the contract and the range-check design.
//
// Copies (index_select, cat) move bytes, not values, so one kernel per unit size serves every
// dtype: each thread copies one unit of a row, the unit being the widest of 16, 8, 4, 2 or 1 bytes
// that divides the row length, both row strides and both base addresses. A warp then reads and
// writes 512 contiguous bytes of a row with 16-byte accesses (rows of a few hundred bytes and up:
// embedding rows, cat of activations), which is what bounds these kernels: memory bandwidth.
// gather copies one element per thread (its reads are a gather by nature). The accumulating
// kernels (index_add, scatter_add) add with atomics, one element per thread; the order of the
// additions into a repeated position is not fixed (see index-ops-impl.h).
//
// Index arithmetic is 32-bit when the work fits (several times faster than 64-bit division on a
// GPU) and 64-bit otherwise; memory offsets are always 64-bit.
#include <cstdint>
#include <type_traits>

#include "index-ops-impl.h"
#include "loops-impl.cuh"

namespace cohort::detail::cuda {

namespace {

constexpr int kThreads = 256;

// ---- the range flag ----

// A flag in device memory that kernels raise on an index outside [0, size); none when not checking.
class RangeFlag {
 public:
  RangeFlag(const Device& device, bool check, cudaStream_t stream) : stream_(stream) {
    if (!check) return;
    flag_ = Tensor::empty({1}, TensorOptions(DType::i32).with_device(device));
    COHORT_CUDA_CHECK(cudaMemsetAsync(flag_.raw_data(), 0, sizeof(int), stream_));
  }
  int* device_ptr() const { return flag_.defined() ? static_cast<int*>(flag_.raw_data()) : nullptr; }
  // Whether every index was in range. When checking, this waits for the stream (the copy back is
  // queued after the kernels that raise the flag).
  bool ok() const {
    if (!flag_.defined()) return true;
    int raised = 0;
    COHORT_CUDA_CHECK(cudaMemcpyAsync(&raised, flag_.raw_data(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    COHORT_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return raised == 0;
  }

 private:
  cudaStream_t stream_;
  Tensor flag_;
};

// Whether every entry of an index on the device is in [0, size), checked on the host: for a launch
// with no work (an empty row), which reads no index and so cannot raise the flag. Rare shapes only.
bool host_in_range(const Tensor& index, int64_t size) {
  const Tensor h = index.to(Device::cpu());
  const int64_t* p = h.data_ptr<int64_t>();
  for (int64_t i = 0; i < h.numel(); ++i) {
    if (p[i] < 0 || p[i] >= size) return false;
  }
  return true;
}

__device__ __forceinline__ bool in_range(int64_t t, int64_t size, int* bad) {
  if (t >= 0 && t < size) return true;
  if (bad != nullptr) atomicOr(bad, 1);
  return false;
}

// ---- row copies (index_select, cat) ----

// dst row r (row_units units) = src row src_row(r). With an index, rows are pairs (o, k) with
// r = o * K + k and src_row = o * size + index[k]; without one, src_row = r. Strides are in units.
struct RowCopy {
  char* dst = nullptr;
  const char* src = nullptr;
  int64_t rows = 0, row_units = 0;
  int64_t dst_stride = 0, src_stride = 0;
  const int64_t* index = nullptr;
  int64_t K = 1, size = 0;
  int* bad = nullptr;
};

template <class U, class Index>
__global__ void copy_rows_kernel(RowCopy a) {
  U* dst = reinterpret_cast<U*>(a.dst);
  const U* src = reinterpret_cast<const U*>(a.src);
  const Index n = static_cast<Index>(a.rows * a.row_units);
  const Index units = static_cast<Index>(a.row_units), K = static_cast<Index>(a.K);
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const Index r = i / units, c = i - r * units;
    int64_t src_row = static_cast<int64_t>(r);
    if (a.index != nullptr) {
      const Index o = r / K, k = r - o * K;
      const int64_t t = a.index[k];
      if (!in_range(t, a.size, a.bad)) continue;
      src_row = static_cast<int64_t>(o) * a.size + t;
    }
    dst[static_cast<int64_t>(r) * a.dst_stride + c] = src[src_row * a.src_stride + c];
  }
}

// The widest unit (16, 8, 4, 2 or 1 bytes) dividing every byte count and address in `values`.
int unit_bytes(std::initializer_list<uint64_t> values) {
  for (int u = 16; u > 1; u /= 2) {
    bool fits = true;
    for (uint64_t v : values) fits = fits && v % static_cast<uint64_t>(u) == 0;
    if (fits) return u;
  }
  return 1;
}

template <class U>
void launch_rows(const RowCopy& a, cudaStream_t stream) {
  const int64_t n = a.rows * a.row_units;
  const auto blocks = static_cast<unsigned>(grid_blocks(n, kThreads));
  if (n <= INT32_MAX) {
    copy_rows_kernel<U, uint32_t><<<blocks, kThreads, 0, stream>>>(a);
  } else {
    copy_rows_kernel<U, int64_t><<<blocks, kThreads, 0, stream>>>(a);
  }
  COHORT_CUDA_CHECK_LAUNCH();
}

// Copies rows of `row_bytes` bytes: a in bytes here, converted to the chosen unit.
void copy_rows(RowCopy a, int64_t row_bytes, int64_t dst_stride_bytes, int64_t src_stride_bytes, cudaStream_t stream) {
  if (a.rows == 0 || row_bytes == 0) return;
  const int u = unit_bytes({static_cast<uint64_t>(row_bytes), static_cast<uint64_t>(dst_stride_bytes),
                            static_cast<uint64_t>(src_stride_bytes), reinterpret_cast<uintptr_t>(a.dst),
                            reinterpret_cast<uintptr_t>(a.src)});
  a.row_units = row_bytes / u;
  a.dst_stride = dst_stride_bytes / u;
  a.src_stride = src_stride_bytes / u;
  switch (u) {
    case 16: launch_rows<uint4>(a, stream); break;
    case 8: launch_rows<uint2>(a, stream); break;
    case 4: launch_rows<uint32_t>(a, stream); break;
    case 2: launch_rows<uint16_t>(a, stream); break;
    default: launch_rows<uint8_t>(a, stream); break;
  }
}

// ---- accumulation ----

template <class T>
__device__ __forceinline__ void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, int64_t>) {
    // Two's complement: the unsigned sum has the signed sum's bits.
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  } else {
    atomicAdd(p, v);  // float, double, int, __half (sm_70+), __nv_bfloat16 (sm_80+)
  }
}

// out[o, index[k], j] += src[o, k, j] over src (outer, K, inner), one element per thread.
template <class T, class Index>
__global__ void index_add_kernel(T* out, const T* src, const int64_t* index, Index n, Index inner, Index K,
                                 int64_t size, int* bad) {
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const Index u = i / inner, j = i - u * inner;
    const Index o = u / K, k = u - o * K;
    const int64_t t = index[k];
    if (!in_range(t, size, bad)) continue;
    atomic_add(out + (static_cast<int64_t>(o) * size + t) * static_cast<int64_t>(inner) + j, src[i]);
  }
}

// ---- gather / scatter ----

// Walks index's shape: `a` is the tensor addressed through `dim` (x for gather, out for scatter),
// `b` the one read in index order (the source of scatter; unused by gather).
struct IndexWalk {
  int nd = 1, dim = 0;
  int64_t sizes[kMaxIndexDims] = {};  // index's shape
  int64_t a_strides[kMaxIndexDims] = {};
  int64_t b_strides[kMaxIndexDims] = {};
  int64_t size = 0;  // a.size(dim): the valid index range
};

// Offsets of element i of index's shape in a (dim's coordinate left out) and in b.
template <class Index>
__device__ __forceinline__ void walk_offsets(const IndexWalk& w, Index i, int64_t& a_off, int64_t& b_off) {
  a_off = 0;
  b_off = 0;
  for (int d = w.nd - 1; d >= 0; --d) {
    const Index s = static_cast<Index>(w.sizes[d]);
    const Index c = i % s;
    i /= s;
    if (d != w.dim) a_off += static_cast<int64_t>(c) * w.a_strides[d];
    b_off += static_cast<int64_t>(c) * w.b_strides[d];
  }
}

template <class U, class Index>
__global__ void gather_kernel(U* out, const U* x, const int64_t* index, Index n, IndexWalk w, int* bad) {
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t t = index[i];
    if (!in_range(t, w.size, bad)) continue;
    int64_t x_off, unused;
    walk_offsets<Index>(w, i, x_off, unused);
    out[i] = x[x_off + t * w.a_strides[w.dim]];
  }
}

template <class T, class Index>
__global__ void scatter_add_kernel(T* out, const T* src, const int64_t* index, Index n, IndexWalk w, int* bad) {
  const Index step = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += step) {
    const int64_t t = index[i];
    if (!in_range(t, w.size, bad)) continue;
    int64_t out_off, src_off;
    walk_offsets<Index>(w, i, out_off, src_off);
    atomic_add(out + out_off + t * w.a_strides[w.dim], src[src_off]);
  }
}

IndexWalk make_walk(const Tensor& index, const Tensor& a, const Tensor* b, int64_t dim, const char* op) {
  const int64_t nd = index.dim();
  COHORT_CHECK(nd >= 1 && nd <= kMaxIndexDims, ShapeError, op, ": on CUDA, tensors of 1 to ", kMaxIndexDims,
               " dims are supported, got an index of shape ", index.shape_str(), "; reshape to fewer dims first");
  IndexWalk w;
  w.nd = static_cast<int>(nd);
  w.dim = static_cast<int>(dim);
  w.size = a.size(dim);
  for (int64_t d = 0; d < nd; ++d) {
    w.sizes[d] = index.size(d);
    w.a_strides[d] = a.stride(d);
    w.b_strides[d] = b != nullptr ? b->stride(d) : 0;
  }
  return w;
}

template <class Index>
unsigned blocks_for(Index n) {
  return static_cast<unsigned>(grid_blocks(static_cast<int64_t>(n), kThreads));
}

}  // namespace

bool index_select(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t size, int64_t inner,
                  bool check) {
  check_same_cuda_device("index_select", out.device(), {&x, &index});
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = stream_of(out);
  RangeFlag flag(out.device(), check, stream);
  RowCopy a;
  a.dst = static_cast<char*>(out.raw_data());
  a.src = static_cast<const char*>(x.raw_data());
  a.K = index.numel();
  a.rows = outer * a.K;
  a.index = index.data_ptr<int64_t>();
  a.size = size;
  a.bad = flag.device_ptr();
  const int64_t row_bytes = inner * static_cast<int64_t>(out.element_size());
  copy_rows(a, row_bytes, row_bytes, row_bytes, stream);
  if (check && outer * inner == 0) return host_in_range(index, size);
  return flag.ok();
}

bool index_add(const Tensor& out, const Tensor& source, const Tensor& index, int64_t outer, int64_t size, int64_t inner,
               bool check) {
  check_same_cuda_device("index_add", out.device(), {&source, &index});
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = stream_of(out);
  RangeFlag flag(out.device(), check, stream);
  const int64_t K = index.numel(), n = outer * K * inner;
  if (n > 0) {
    dispatch_device_numeric(out.dtype(), "index_add", [&](auto tag) {
      using T = decltype(tag);
      T* o = static_cast<T*>(out.raw_data());
      const T* s = static_cast<const T*>(source.raw_data());
      const int64_t* ip = index.data_ptr<int64_t>();
      if (n <= INT32_MAX) {
        index_add_kernel<T, uint32_t><<<blocks_for(n), kThreads, 0, stream>>>(
            o, s, ip, static_cast<uint32_t>(n), static_cast<uint32_t>(inner), static_cast<uint32_t>(K), size,
            flag.device_ptr());
      } else {
        index_add_kernel<T, int64_t><<<blocks_for(n), kThreads, 0, stream>>>(o, s, ip, n, inner, K, size,
                                                                            flag.device_ptr());
      }
      COHORT_CUDA_CHECK_LAUNCH();
    });
  }
  if (check && n == 0) return host_in_range(index, size);
  return flag.ok();
}

bool gather(const Tensor& out, const Tensor& x, const Tensor& index, int64_t dim, bool check) {
  check_same_cuda_device("gather", out.device(), {&x, &index});
  const IndexWalk w = make_walk(index, x, nullptr, dim, "gather");
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = stream_of(out);
  RangeFlag flag(out.device(), check, stream);
  const int64_t n = index.numel();
  if (n > 0) {
    const int64_t* ip = index.data_ptr<int64_t>();
    auto launch = [&](auto unit) {
      using U = decltype(unit);
      U* o = static_cast<U*>(out.raw_data());
      const U* xp = static_cast<const U*>(x.raw_data());
      if (n <= INT32_MAX) {
        gather_kernel<U, uint32_t><<<blocks_for(n), kThreads, 0, stream>>>(o, xp, ip, static_cast<uint32_t>(n), w,
                                                                          flag.device_ptr());
      } else {
        gather_kernel<U, int64_t><<<blocks_for(n), kThreads, 0, stream>>>(o, xp, ip, n, w, flag.device_ptr());
      }
      COHORT_CUDA_CHECK_LAUNCH();
    };
    switch (out.element_size()) {
      case 1: launch(uint8_t{}); break;
      case 2: launch(uint16_t{}); break;
      case 4: launch(uint32_t{}); break;
      default: launch(uint64_t{}); break;
    }
  }
  return flag.ok();
}

bool scatter_add(const Tensor& out, const Tensor& source, const Tensor& index, int64_t dim, bool check) {
  check_same_cuda_device("scatter_add", out.device(), {&source, &index});
  const IndexWalk w = make_walk(index, out, &source, dim, "scatter_add");
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = stream_of(out);
  RangeFlag flag(out.device(), check, stream);
  const int64_t n = index.numel();
  if (n > 0) {
    dispatch_device_numeric(out.dtype(), "scatter_add", [&](auto tag) {
      using T = decltype(tag);
      T* o = static_cast<T*>(out.raw_data());
      const T* s = static_cast<const T*>(source.raw_data());
      const int64_t* ip = index.data_ptr<int64_t>();
      if (n <= INT32_MAX) {
        scatter_add_kernel<T, uint32_t><<<blocks_for(n), kThreads, 0, stream>>>(o, s, ip, static_cast<uint32_t>(n), w,
                                                                               flag.device_ptr());
      } else {
        scatter_add_kernel<T, int64_t><<<blocks_for(n), kThreads, 0, stream>>>(o, s, ip, n, w, flag.device_ptr());
      }
      COHORT_CUDA_CHECK_LAUNCH();
    });
  }
  return flag.ok();
}

void copy_into_slice(const Tensor& out, const Tensor& src, int64_t dim, int64_t offset) {
  check_same_cuda_device("cat", out.device(), {&src});
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= out.size(d);
  for (int64_t d = dim + 1; d < out.dim(); ++d) inner *= out.size(d);
  const auto elem = static_cast<int64_t>(out.element_size());
  DeviceGuard guard(out.device().index);
  RowCopy a;
  a.dst = static_cast<char*>(out.raw_data()) + offset * inner * elem;
  a.src = static_cast<const char*>(src.raw_data());
  a.rows = outer;
  const int64_t row_bytes = src.size(dim) * inner * elem;
  copy_rows(a, row_bytes, out.size(dim) * inner * elem, row_bytes, stream_of(out));
}

}  // namespace cohort::detail::cuda
