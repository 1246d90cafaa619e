// The device side of cohort's elementwise kernels (implementation-only; .cu files, and
// tests/emulation, which runs this file's loops on the CPU).
//
// Element types on the device: cohort's BFloat16 and Half are stored as CUDA's __nv_bfloat16 and
// __half (the same 16 bits) and computed in float, like on the CPU. `to_acc` loads a value into
// its computing type, `from_acc` rounds back (to nearest even), `convert` is the CPU's cast():
// 16-bit floats go through float, bool is "not zero".
//
// elementwise() runs f(ptrs) once per element of a plan (plan-impl.h) with a grid-stride loop:
// a flat plan (one dim, strides 0 or 1) indexes directly; otherwise each thread turns its linear
// index into per-operand offsets, dividing by the sizes innermost first (in 32 bits when the
// element count allows, which is several times faster than 64-bit division on a GPU).
//
// Two compilers read this file: nvcc, through the .cu files, and the host compiler, through
// tests/emulation/cuda_emulation.h, which defines COHORT_CUDA_EMULATION and the CUDA names used
// here (the qualifiers, threadIdx/blockIdx/blockDim/gridDim, __nv_bfloat16/__half and their
// conversions, uint2/uint4, cudaStream_t) and, in namespace cohort::detail::cuda, the host side
// that cuda-impl.h gives nvcc: DeviceGuard, stream_of, grid_blocks and launch_kernel (which there
// runs the kernel's threads as fibers and records which kernel it was). A kernel edit that uses
// another CUDA name must add it there too; the emulation build fails until it does.
#pragma once

#include <cstdint>
#include <type_traits>

#ifndef COHORT_CUDA_EMULATION
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda-impl.h"
#endif

#include "cohort/core/dtype.h"
#include "plan-impl.h"

namespace cohort::detail::cuda {

// ---- element types ----

template <class T> struct DeviceType { using type = T; };
template <> struct DeviceType<BFloat16> { using type = __nv_bfloat16; };
template <> struct DeviceType<Half> { using type = __half; };
template <class T> using device_type_t = typename DeviceType<T>::type;

template <class T> struct DeviceAcc { using type = T; };
template <> struct DeviceAcc<__nv_bfloat16> { using type = float; };
template <> struct DeviceAcc<__half> { using type = float; };
template <class T> using device_acc_t = typename DeviceAcc<T>::type;

template <class T>
__device__ __forceinline__ device_acc_t<T> to_acc(T v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __bfloat162float(v);
  } else if constexpr (std::is_same_v<T, __half>) {
    return __half2float(v);
  } else {
    return v;
  }
}

template <class T>
__device__ __forceinline__ T from_acc(device_acc_t<T> v) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    return __float2bfloat16_rn(v);
  } else if constexpr (std::is_same_v<T, __half>) {
    return __float2half_rn(v);
  } else {
    return v;
  }
}

template <class T>
constexpr bool is_half_type_v = std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>;

// The CPU's detail::cast on the device.
template <class To, class Ti>
__device__ __forceinline__ To convert(Ti v) {
  if constexpr (std::is_same_v<To, Ti>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return to_acc(v) != device_acc_t<Ti>(0);
  } else if constexpr (is_half_type_v<To>) {
    return from_acc<To>(static_cast<float>(to_acc(v)));
  } else {
    return static_cast<To>(to_acc(v));
  }
}

// dispatch() on the device types: calls f with a value of device_type_t<the dtype's C++ type>.
template <class F>
void dispatch_device(DType t, const char* op, F&& f) {
  dispatch(t, op, [&](auto tag) { f(device_type_t<decltype(tag)>{}); });
}
template <class F>
void dispatch_device_floating(DType t, const char* op, F&& f) {
  dispatch_floating(t, op, [&](auto tag) { f(device_type_t<decltype(tag)>{}); });
}
template <class F>
void dispatch_device_numeric(DType t, const char* op, F&& f) {
  dispatch_numeric(t, op, [&](auto tag) { f(device_type_t<decltype(tag)>{}); });
}

// ---- the loop ----

constexpr int kElementwiseThreads = 256;

template <int N, class Index>
__device__ __forceinline__ void plan_offsets(const ElementwisePlan<N>& p, Index i, int64_t (&off)[N]) {
#pragma unroll
  for (int k = 0; k < N; ++k) off[k] = 0;
  for (int d = p.ndim - 1; d >= 0; --d) {
    const Index size = static_cast<Index>(p.sizes[d]);
    const Index idx = i % size;
    i /= size;
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += static_cast<int64_t>(idx) * p.strides[k][d];
  }
}

// F: __device__ void operator()(char* const (&ptrs)[N]) const, given each operand's element.
template <int N, class Index, class F>
__global__ void elementwise_kernel(ElementwisePlan<N> p, F f) {
  const Index n = static_cast<Index>(p.numel);
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    char* ptrs[N];
    if (p.flat) {
#pragma unroll
      for (int k = 0; k < N; ++k) ptrs[k] = p.base[k] + static_cast<int64_t>(i) * p.strides[k][0] * f.elem_size(k);
    } else {
      int64_t off[N];
      plan_offsets<N, Index>(p, i, off);
#pragma unroll
      for (int k = 0; k < N; ++k) ptrs[k] = p.base[k] + off[k] * f.elem_size(k);
    }
    f(ptrs);
  }
}

// The vectorised flat loop: each thread takes kVec consecutive elements, loading every contiguous
// operand's kVec elements with one to two vector loads (4 to 32 bytes: 16 for f32, 8 for bf16)
// into registers, applying f to each element there, and storing the output the same way (a
// broadcast operand, stride 0, is copied into every slot). Taken when the plan is flat, the output is
// contiguous and every contiguous operand's base is aligned to its chunk (see vector_plan_ok);
// in-place ops alias the output with an input element for element, which loading before storing
// keeps correct.
constexpr int kVec = 4;

template <int kBytes>
__device__ __forceinline__ void copy_chunk(char* dst, const char* src) {
  if constexpr (kBytes == 4) {
    *reinterpret_cast<uint32_t*>(dst) = *reinterpret_cast<const uint32_t*>(src);
  } else if constexpr (kBytes == 8) {
    *reinterpret_cast<uint2*>(dst) = *reinterpret_cast<const uint2*>(src);
  } else if constexpr (kBytes == 16) {
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
  } else {
    static_assert(kBytes == 32, "element sizes are 1, 2, 4 or 8 bytes");
    reinterpret_cast<uint4*>(dst)[0] = reinterpret_cast<const uint4*>(src)[0];
    reinterpret_cast<uint4*>(dst)[1] = reinterpret_cast<const uint4*>(src)[1];
  }
}

// A chunk of kVec elements of `size` bytes, copied with the widest loads its size allows.
__device__ __forceinline__ void copy_elements(char* dst, const char* src, int size) {
  switch (size) {
    case 1: copy_chunk<kVec * 1>(dst, src); break;
    case 2: copy_chunk<kVec * 2>(dst, src); break;
    case 4: copy_chunk<kVec * 4>(dst, src); break;
    default: copy_chunk<kVec * 8>(dst, src); break;
  }
}

// kVec copies of one element of `size` bytes (a broadcast operand's value in every slot).
template <class U>
__device__ __forceinline__ void splat_as(char* dst, const char* src) {
  const U v = *reinterpret_cast<const U*>(src);
#pragma unroll
  for (int j = 0; j < kVec; ++j) reinterpret_cast<U*>(dst)[j] = v;
}
__device__ __forceinline__ void splat_element(char* dst, const char* src, int size) {
  switch (size) {
    case 1: splat_as<uint8_t>(dst, src); break;
    case 2: splat_as<uint16_t>(dst, src); break;
    case 4: splat_as<uint32_t>(dst, src); break;
    default: splat_as<unsigned long long>(dst, src); break;
  }
}

// Every operand of f points into buf at offsets known at compile time (a broadcast operand is
// copied into its slots too): a pointer that could be either local or global would force buf
// out of registers into local memory.
template <int N, class F>
__global__ void elementwise_vec_kernel(ElementwisePlan<N> p, int64_t chunks, F f) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < chunks; c += stride) {
    alignas(16) char buf[N][kVec * 8];
#pragma unroll
    for (int k = 1; k < N; ++k) {
      const int size = static_cast<int>(f.elem_size(k));  // a constant here, so buf stays in registers
      if (p.strides[k][0] != 0) {
        copy_elements(buf[k], p.base[k] + c * kVec * size, size);
      } else {
        splat_element(buf[k], p.base[k], size);
      }
    }
#pragma unroll
    for (int j = 0; j < kVec; ++j) {
      char* ptrs[N];
      ptrs[0] = buf[0] + j * f.elem_size(0);
#pragma unroll
      for (int k = 1; k < N; ++k) ptrs[k] = buf[k] + j * f.elem_size(k);
      f(ptrs);
    }
    const int out_size = static_cast<int>(f.elem_size(0));
    copy_elements(p.base[0] + c * kVec * out_size, buf[0], out_size);
  }
}

// Whether the plan can take the vectorised loop (and it is not switched off: COHORT_CUDA_VECTORIZE=0,
// for comparing the two loops in a benchmark or ruling the vectorised one out when chasing a bug).
bool vectorize_elementwise();
template <int N>
bool vector_plan_ok(const ElementwisePlan<N>& p) {
  if (!p.flat || p.strides[0][0] != 1 || p.numel < kVec || !vectorize_elementwise()) return false;
  for (int k = 0; k < N; ++k) {
    const int size = p.elem_size[k];
    const uintptr_t align = static_cast<uintptr_t>(size * kVec < 16 ? size * kVec : 16);
    if (size != 1 && size != 2 && size != 4 && size != 8) return false;
    if (p.strides[k][0] == 1 && reinterpret_cast<uintptr_t>(p.base[k]) % align != 0) return false;
  }
  return true;
}

#ifndef COHORT_CUDA_EMULATION
// kernel<<<blocks, threads, 0, stream>>>(args...), checked (tests/emulation has its own, for the CPU).
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), unsigned blocks, unsigned threads, cudaStream_t stream,
                   const Args&... args) {
  kernel<<<blocks, threads, 0, stream>>>(args...);
  COHORT_CUDA_CHECK_LAUNCH();
}
#endif

// Runs f over the plan on `stream`.
template <int N, class F>
void launch_elementwise(const ElementwisePlan<N>& p_in, cudaStream_t stream, const F& f) {
  if (p_in.numel == 0) return;
  ElementwisePlan<N> p = p_in;
  if (vector_plan_ok(p)) {
    const int64_t chunks = p.numel / kVec;
    launch_kernel(elementwise_vec_kernel<N, F>, static_cast<unsigned>(grid_blocks(chunks, kElementwiseThreads)),
                  kElementwiseThreads, stream, p, chunks, f);
    // The last numel % kVec elements go through the plain loop below.
    for (int k = 0; k < N; ++k) p.base[k] += p.strides[k][0] * chunks * kVec * p.elem_size[k];
    p.numel -= chunks * kVec;
    p.sizes[0] = p.numel;
    if (p.numel == 0) return;
  }
  const auto blocks = static_cast<unsigned>(grid_blocks(p.numel, kElementwiseThreads));
  if (p.numel <= INT32_MAX) {
    launch_kernel(elementwise_kernel<N, uint32_t, F>, blocks, kElementwiseThreads, stream, p, f);
  } else {
    launch_kernel(elementwise_kernel<N, int64_t, F>, blocks, kElementwiseThreads, stream, p, f);
  }
}

// Functor adapters: Out, In... are device element types; Op works on their computing types.
template <class Out, class In, class Op>
struct UnaryFn {
  Op op;
  __device__ __forceinline__ size_t elem_size(int k) const { return k == 0 ? sizeof(Out) : sizeof(In); }
  __device__ __forceinline__ void operator()(char* const (&p)[2]) const {
    *reinterpret_cast<Out*>(p[0]) = op(*reinterpret_cast<const In*>(p[1]));
  }
};

template <class Out, class A, class B, class Op>
struct BinaryFn {
  Op op;
  __device__ __forceinline__ size_t elem_size(int k) const {
    return k == 0 ? sizeof(Out) : (k == 1 ? sizeof(A) : sizeof(B));
  }
  __device__ __forceinline__ void operator()(char* const (&p)[3]) const {
    *reinterpret_cast<Out*>(p[0]) = op(*reinterpret_cast<const A*>(p[1]), *reinterpret_cast<const B*>(p[2]));
  }
};

template <class Out, class A, class B, class C, class Op>
struct TernaryFn {
  Op op;
  __device__ __forceinline__ size_t elem_size(int k) const {
    return k == 0 ? sizeof(Out) : (k == 1 ? sizeof(A) : (k == 2 ? sizeof(B) : sizeof(C)));
  }
  __device__ __forceinline__ void operator()(char* const (&p)[4]) const {
    *reinterpret_cast<Out*>(p[0]) = op(*reinterpret_cast<const A*>(p[1]), *reinterpret_cast<const B*>(p[2]),
                                       *reinterpret_cast<const C*>(p[3]));
  }
};

// out = op(in) elementwise, out and in of out's shape on one device.
template <class Out, class In, class Op>
void unary_loop(const Tensor& out, const Tensor& in, const Op& op, const char* name) {
  const auto plan = make_elementwise_plan<2>(out.shape(), {&out, &in}, name);
  DeviceGuard guard(out.device().index);
  launch_elementwise(plan, stream_of(out), UnaryFn<Out, In, Op>{op});
}

template <class Out, class A, class B, class Op>
void binary_loop(const Tensor& out, const Tensor& a, const Tensor& b, const Op& op, const char* name) {
  const auto plan = make_elementwise_plan<3>(out.shape(), {&out, &a, &b}, name);
  DeviceGuard guard(out.device().index);
  launch_elementwise(plan, stream_of(out), BinaryFn<Out, A, B, Op>{op});
}

template <class Out, class A, class B, class C, class Op>
void ternary_loop(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, const Op& op,
                  const char* name) {
  const auto plan = make_elementwise_plan<4>(out.shape(), {&out, &a, &b, &c}, name);
  DeviceGuard guard(out.device().index);
  launch_elementwise(plan, stream_of(out), TernaryFn<Out, A, B, C, Op>{op});
}

}  // namespace cohort::detail::cuda
