// The device side of cohort's elementwise kernels (implementation-only; .cu files only).
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
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "cohort/core/dtype.h"
#include "cuda-impl.h"
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

// Runs f over the plan on `stream`.
template <int N, class F>
void launch_elementwise(const ElementwisePlan<N>& p, cudaStream_t stream, const F& f) {
  if (p.numel == 0) return;
  const int64_t blocks = grid_blocks(p.numel, kElementwiseThreads);
  if (p.numel <= INT32_MAX) {
    elementwise_kernel<N, uint32_t, F><<<static_cast<unsigned>(blocks), kElementwiseThreads, 0, stream>>>(p, f);
  } else {
    elementwise_kernel<N, int64_t, F><<<static_cast<unsigned>(blocks), kElementwiseThreads, 0, stream>>>(p, f);
  }
  COHORT_CUDA_CHECK_LAUNCH();
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
