// max_pool2d and avg_pool2d on CUDA: direct kernels that compute exactly what the CPU loops
// (ops/pool_fallback.cpp) do, so the results agree to the last bit for f32 and f64.
//
// Forward: one thread per output element (grid-stride), walking its window row by row like the CPU.
// Backward is a gather instead of the CPU's scatter (no atomics, deterministic): one thread per
// input element visits the output windows that contain it, in the CPU's order (oh, then ow), and
// sums their contributions, so even the rounding matches. Window of output o along a dim of size n:
// it starts at o*stride - padding and spans kernel elements, clipped to the input; input i lies in
// the windows o with o*stride - padding <= i < o*stride - padding + kernel.
#include <cuda_runtime.h>

#include "dnn-ops-impl.h"
#include "loops-impl.cuh"

namespace cohort::detail::cuda {

namespace {

constexpr int kThreads = 256;

struct Window {
  int64_t begin, end, padded_size;
};

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
__device__ __forceinline__ int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

__device__ __forceinline__ Window window(int64_t o, int64_t size, const PoolGeometry& g) {
  const int64_t start = o * g.stride - g.padding;
  const int64_t stop = min64(start + g.kernel, size + g.padding);
  return {max64(start, 0), min64(stop, size), stop - start};
}

// The outputs along one dim whose windows contain input i: [first, last].
__device__ __forceinline__ void covering(int64_t i, int64_t out_size, const PoolGeometry& g, int64_t& first,
                                         int64_t& last) {
  const int64_t lo = i + g.padding - g.kernel + 1;  // o*stride >= lo
  first = lo <= 0 ? 0 : (lo + g.stride - 1) / g.stride;
  last = min64((i + g.padding) / g.stride, out_size - 1);
}

__device__ __forceinline__ int64_t avg_count(const PoolGeometry& g, const Window& wh, const Window& ww) {
  return g.count_include_pad ? wh.padded_size * ww.padded_size : (wh.end - wh.begin) * (ww.end - ww.begin);
}

template <class T>
__global__ void max_pool_forward_kernel(PoolGeometry g, const T* x, T* y, int64_t* indices, int64_t total) {
  using A = device_acc_t<T>;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ow = o % g.wo, oh = (o / g.wo) % g.ho, plane = o / (g.wo * g.ho);
    const T* xp = x + plane * g.h * g.w;
    const Window wh = window(oh, g.h, g), ww = window(ow, g.w, g);
    // The CPU's MaxSoFar: the first maximum wins, and the first NaN wins over everything.
    A value = -INFINITY;
    int64_t at = wh.begin * g.w + ww.begin;
    bool nan_seen = false;
    for (int64_t ih = wh.begin; ih < wh.end; ++ih) {
      for (int64_t iw = ww.begin; iw < ww.end; ++iw) {
        const A v = to_acc(xp[ih * g.w + iw]);
        const bool is_nan = v != v;
        if (!nan_seen && (v > value || is_nan)) at = ih * g.w + iw;
        nan_seen = nan_seen || is_nan;
        value = v > value ? v : value;
      }
    }
    y[o] = nan_seen ? xp[at] : from_acc<T>(value);
    indices[o] = at;
  }
}

template <class T>
__global__ void max_pool_backward_kernel(PoolGeometry g, const T* dy, const int64_t* indices, T* dx, int64_t total) {
  using A = device_acc_t<T>;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = i % g.w, ih = (i / g.w) % g.h, plane = i / (g.w * g.h);
    const int64_t here = ih * g.w + iw;
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.ho, g, oh0, oh1);
    covering(iw, g.wo, g, ow0, ow1);
    const int64_t* ip = indices + plane * g.ho * g.wo;
    const T* dyp = dy + plane * g.ho * g.wo;
    A total_grad = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        if (ip[oh * g.wo + ow] == here) total_grad += to_acc(dyp[oh * g.wo + ow]);
      }
    }
    dx[i] = from_acc<T>(total_grad);
  }
}

template <class T>
__global__ void avg_pool_forward_kernel(PoolGeometry g, const T* x, T* y, int64_t total) {
  using A = device_acc_t<T>;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total;
       o += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t ow = o % g.wo, oh = (o / g.wo) % g.ho, plane = o / (g.wo * g.ho);
    const T* xp = x + plane * g.h * g.w;
    const Window wh = window(oh, g.h, g), ww = window(ow, g.w, g);
    A sum = 0;
    for (int64_t ih = wh.begin; ih < wh.end; ++ih)
      for (int64_t iw = ww.begin; iw < ww.end; ++iw) sum += to_acc(xp[ih * g.w + iw]);
    y[o] = from_acc<T>(sum / static_cast<A>(avg_count(g, wh, ww)));
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(PoolGeometry g, const T* dy, T* dx, int64_t total) {
  using A = device_acc_t<T>;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t iw = i % g.w, ih = (i / g.w) % g.h, plane = i / (g.w * g.h);
    int64_t oh0, oh1, ow0, ow1;
    covering(ih, g.ho, g, oh0, oh1);
    covering(iw, g.wo, g, ow0, ow1);
    const T* dyp = dy + plane * g.ho * g.wo;
    A total_grad = 0;
    for (int64_t oh = oh0; oh <= oh1; ++oh) {
      const Window wh = window(oh, g.h, g);
      for (int64_t ow = ow0; ow <= ow1; ++ow) {
        const Window ww = window(ow, g.w, g);
        total_grad += to_acc(dyp[oh * g.wo + ow]) / static_cast<A>(avg_count(g, wh, ww));
      }
    }
    dx[i] = from_acc<T>(total_grad);
  }
}

unsigned blocks_for(int64_t n) { return static_cast<unsigned>(grid_blocks(n, kThreads)); }

template <class F>
void launch(const char* op, const Tensor& out, int64_t total, const F& f) {
  if (total == 0) return;
  DeviceGuard guard(out.device().index);
  dispatch_device_floating(out.dtype(), op, [&](auto tag) {
    f(tag, blocks_for(total), stream_of(out));
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

}  // namespace

void max_pool_forward(const PoolGeometry& g, const Tensor& x, const Tensor& y, const Tensor& indices) {
  check_same_cuda_device("max_pool2d", y.device(), {&x, &indices});
  launch("max_pool2d", y, y.numel(), [&](auto tag, unsigned blocks, cudaStream_t stream) {
    using T = decltype(tag);
    max_pool_forward_kernel<T><<<blocks, kThreads, 0, stream>>>(g, static_cast<const T*>(x.raw_data()),
                                                                static_cast<T*>(y.raw_data()),
                                                                indices.data_ptr<int64_t>(), y.numel());
  });
}

void max_pool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& indices, const Tensor& dx) {
  check_same_cuda_device("max_pool2d backward", dx.device(), {&dy, &indices});
  launch("max_pool2d backward", dx, dx.numel(), [&](auto tag, unsigned blocks, cudaStream_t stream) {
    using T = decltype(tag);
    max_pool_backward_kernel<T><<<blocks, kThreads, 0, stream>>>(g, static_cast<const T*>(dy.raw_data()),
                                                                 indices.data_ptr<int64_t>(),
                                                                 static_cast<T*>(dx.raw_data()), dx.numel());
  });
}

void avg_pool_forward(const PoolGeometry& g, const Tensor& x, const Tensor& y) {
  check_same_cuda_device("avg_pool2d", y.device(), {&x});
  launch("avg_pool2d", y, y.numel(), [&](auto tag, unsigned blocks, cudaStream_t stream) {
    using T = decltype(tag);
    avg_pool_forward_kernel<T><<<blocks, kThreads, 0, stream>>>(g, static_cast<const T*>(x.raw_data()),
                                                                static_cast<T*>(y.raw_data()), y.numel());
  });
}

void avg_pool_backward(const PoolGeometry& g, const Tensor& dy, const Tensor& dx) {
  check_same_cuda_device("avg_pool2d backward", dx.device(), {&dy});
  launch("avg_pool2d backward", dx, dx.numel(), [&](auto tag, unsigned blocks, cudaStream_t stream) {
    using T = decltype(tag);
    avg_pool_backward_kernel<T><<<blocks, kThreads, 0, stream>>>(g, static_cast<const T*>(dy.raw_data()),
                                                                 static_cast<T*>(dx.raw_data()), dx.numel());
  });
}

}  // namespace cohort::detail::cuda
