// Random numbers on CUDA tensors: rand, randn, randint and dropout, drawing the CPU's numbers bit for
// bit (see index-ops-impl.h): element i comes from word i % 4 of Philox counter first + i / 4.
//
// One thread per counter: it runs Philox once and writes the counter's four elements, with one
// 4-element vector access per tensor when the pointers allow (always, for the fresh tensors these
// ops write, unless the input is an offset view). Philox costs ~60 integer instructions per four
// elements, far below what the memory traffic allows, so rand, randint and dropout are bound by
// memory bandwidth. randn computes in double, like the CPU: log, sqrt and sincos in double make it
// bound by the H100's FP64 rate (~0.7 ms for 10^8 numbers), acceptable for initialisation.
//
// Conversions are the CPU's: uniform words and Box-Muller in double exactly as generator.h and
// factory.cpp write them (no expression below can contract into an FMA, so the arithmetic is the
// same IEEE operations as on the CPU), then cast<T>(double). The only difference is libm: CUDA's
// double log is within 1 ulp and sin/cos within 2 ulp, where glibc is correctly rounded in
// practice, so randn in f64 may differ from the CPU in the last few bits, and in f32/bf16/f16 only
// when a double lands within those bits of a rounding boundary (about 1 element in 10^8).
#include <cstdint>
#include <type_traits>

#include "../tensor/philox-impl.h"
#include "index-ops-impl.h"
#include "loops-impl.cuh"

namespace cohort::detail::cuda {

namespace {

constexpr int kThreads = 256;

// The CPU's Philox, from one definition (tensor/philox-impl.h).
__device__ __forceinline__ void philox(uint64_t seed, uint64_t counter, uint32_t out[4]) {
  philox4x32_10(seed, counter, out);
}

// detail::uniform_double: exact (a 32-bit integer times a power of two).
__device__ __forceinline__ double uniform_double(uint32_t x) { return static_cast<double>(x) * (1.0 / 4294967296.0); }

struct Draw {
  RandomKind kind;
  uint64_t seed, first;
  int64_t n;      // elements
  int64_t low;    // integer
  uint64_t range;  // integer
};

// The four doubles of counter c, as factory.cpp's fill lambdas compute them.
__device__ __forceinline__ void draw4(const Draw& d, const uint32_t r[4], double v[4]) {
  switch (d.kind) {
    case RandomKind::uniform:
#pragma unroll
      for (int k = 0; k < 4; ++k) v[k] = uniform_double(r[k]);
      break;
    case RandomKind::normal: {
      constexpr double kTwoPi = 6.283185307179586;
#pragma unroll
      for (int k = 0; k < 4; k += 2) {
        const double u1 = (static_cast<double>(r[k]) + 1.0) * (1.0 / 4294967297.0);  // (0, 1)
        const double u2 = uniform_double(r[k + 1]);
        const double radius = sqrt(-2.0 * log(u1));
        double s, c;
        sincos(kTwoPi * u2, &s, &c);
        v[k] = radius * c;
        v[k + 1] = radius * s;
      }
      break;
    }
    case RandomKind::integer:
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const uint64_t x = (static_cast<uint64_t>(r[k]) << 32) | r[(k + 1) % 4];
        v[k] = static_cast<double>(d.low + static_cast<int64_t>(x % d.range));
      }
      break;
  }
}

// Four consecutive elements, for one vector access.
template <class T>
struct alignas(4 * sizeof(T)) Pack4 {
  T v[4];
};

template <class T>
bool aligned4(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % alignof(Pack4<T>) == 0;
}

template <class T>
__global__ void random_fill_kernel(T* out, Draw d, bool vec) {
  const int64_t counters = (d.n + 3) / 4;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < counters; c += step) {
    uint32_t r[4];
    philox(d.seed, d.first + static_cast<uint64_t>(c), r);
    double v[4];
    draw4(d, r, v);
    const int64_t i0 = 4 * c;
    if (vec && i0 + 4 <= d.n) {
      Pack4<T> p;
#pragma unroll
      for (int k = 0; k < 4; ++k) p.v[k] = convert<T, double>(v[k]);
      *reinterpret_cast<Pack4<T>*>(out + i0) = p;
    } else {
      for (int k = 0; k < 4 && i0 + k < d.n; ++k) out[i0 + k] = convert<T, double>(v[k]);
    }
  }
}

// out = keep ? x * s : 0 with keep = uniform >= p, four elements per counter (dropout.cpp).
template <class T>
__global__ void dropout_kernel(T* out, bool* mask, const T* x, int64_t n, double p, device_acc_t<T> s, uint64_t seed,
                               uint64_t first, bool vec) {
  using A = device_acc_t<T>;
  const int64_t counters = (n + 3) / 4;
  const int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < counters; c += step) {
    uint32_t r[4];
    philox(seed, first + static_cast<uint64_t>(c), r);
    const int64_t i0 = 4 * c;
    if (vec && i0 + 4 <= n) {
      const Pack4<T> xv = *reinterpret_cast<const Pack4<T>*>(x + i0);
      Pack4<T> ov;
      Pack4<bool> mv;
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        const bool keep = uniform_double(r[k]) >= p;
        mv.v[k] = keep;
        ov.v[k] = from_acc<T>(keep ? A(to_acc(xv.v[k]) * s) : A(0));
      }
      *reinterpret_cast<Pack4<T>*>(out + i0) = ov;
      *reinterpret_cast<Pack4<bool>*>(mask + i0) = mv;
    } else {
      for (int k = 0; k < 4 && i0 + k < n; ++k) {
        const bool keep = uniform_double(r[k]) >= p;
        mask[i0 + k] = keep;
        out[i0 + k] = from_acc<T>(keep ? A(to_acc(x[i0 + k]) * s) : A(0));
      }
    }
  }
}

template <class T>
struct DropoutGrad {
  device_acc_t<T> s;
  __device__ __forceinline__ T operator()(T g, bool keep) const {
    using A = device_acc_t<T>;
    return from_acc<T>(keep ? A(to_acc(g) * s) : A(0));
  }
};

unsigned counter_blocks(int64_t n) { return static_cast<unsigned>(grid_blocks((n + 3) / 4, kThreads)); }

}  // namespace

void random_fill(const Tensor& t, RandomKind kind, uint64_t seed, uint64_t first, int64_t low, uint64_t range) {
  COHORT_CHECK(t.is_contiguous(), ValueError, "random_fill: internal: expected a contiguous tensor");
  const int64_t n = t.numel();
  if (n == 0) return;
  DeviceGuard guard(t.device().index);
  const Draw d{kind, seed, first, n, low, range == 0 ? 1 : range};
  dispatch_device(t.dtype(), "random", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(t.raw_data());
    random_fill_kernel<T><<<counter_blocks(n), kThreads, 0, stream_of(t)>>>(out, d, aligned4<T>(out));
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

void dropout(const Tensor& out, const Tensor& mask, const Tensor& x, double p, double scale, uint64_t seed,
             uint64_t first) {
  check_same_cuda_device("dropout", out.device(), {&mask, &x});
  COHORT_CHECK(out.is_contiguous() && mask.is_contiguous() && x.is_contiguous(), ValueError,
               "dropout: internal: expected contiguous tensors");
  const int64_t n = x.numel();
  if (n == 0) return;
  DeviceGuard guard(out.device().index);
  dispatch_device_floating(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.raw_data());
    bool* m = static_cast<bool*>(mask.raw_data());
    const T* xp = static_cast<const T*>(x.raw_data());
    const bool vec = aligned4<T>(o) && aligned4<T>(xp) && aligned4<bool>(m);
    dropout_kernel<T><<<counter_blocks(n), kThreads, 0, stream_of(out)>>>(
        o, m, xp, n, p, static_cast<device_acc_t<T>>(scale), seed, first, vec);
    COHORT_CUDA_CHECK_LAUNCH();
  });
}

void dropout_backward(const Tensor& out, const Tensor& g, const Tensor& mask, double scale) {
  check_same_cuda_device("dropout", out.device(), {&g, &mask});
  dispatch_device_floating(g.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    binary_loop<T, T, bool>(out, g, mask, DropoutGrad<T>{static_cast<device_acc_t<T>>(scale)}, "dropout");
  });
}

}  // namespace cohort::detail::cuda
