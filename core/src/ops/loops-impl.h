// The strided loop every CPU elementwise kernel runs on (implementation-only header).
//
// Operands are viewed over one common iteration shape (inputs already broadcast: a broadcast dim
// has stride 0). Dims that every operand walks contiguously are merged first, so a contiguous
// tensor becomes a single flat run. The iteration space, in row-major order, is split into equal
// ranges for the threads; each range is walked as runs of the innermost dim, and the kernel gets a
// run at a time: pointers to its first element and each operand's stride in elements. Kernels
// special-case unit (and zero) strides so the compiler vectorises the common cases.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "cohort/core/parallel_for.h"
#include "cohort/core/tensor.h"

namespace cohort::detail {

// Grain for parallel elementwise loops: below this many elements one thread is faster.
constexpr int64_t kElementwiseGrain = 32768;

template <size_t N>
struct LoopPlan {
  Shape shape;                          // coalesced iteration shape (at least one dim)
  std::array<Strides, N> strides;       // per operand, in elements
  std::array<char*, N> base;            // per operand, first element
  std::array<size_t, N> elem_size;      // per operand, bytes
};

// Builds the plan for operands that all have `shape` (views with broadcast strides allowed).
template <size_t N>
LoopPlan<N> make_plan(const Shape& shape, const std::array<const Tensor*, N>& ops) {
  LoopPlan<N> plan;
  for (size_t k = 0; k < N; ++k) {
    plan.base[k] = static_cast<char*>(ops[k]->raw_data());
    plan.elem_size[k] = ops[k]->element_size();
  }
  // Drop size-1 dims, then merge dim i into i+1 where every operand allows it.
  std::vector<int64_t> dims;
  for (size_t d = 0; d < shape.size(); ++d)
    if (shape[d] != 1) dims.push_back(static_cast<int64_t>(d));
  Shape sh;
  std::array<Strides, N> st;
  for (int64_t d : dims) {
    bool merge = !sh.empty();
    for (size_t k = 0; k < N && merge; ++k)
      merge = st[k].back() == ops[k]->strides()[d] * shape[d];
    if (merge) {
      sh.back() *= shape[d];
      for (size_t k = 0; k < N; ++k) st[k].back() = ops[k]->strides()[d];
    } else {
      sh.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k) st[k].push_back(ops[k]->strides()[d]);
    }
  }
  if (sh.empty()) {
    sh.push_back(1);
    for (size_t k = 0; k < N; ++k) st[k].push_back(0);
  }
  plan.shape = std::move(sh);
  plan.strides = std::move(st);
  return plan;
}

// Walks linear positions [begin, end) of the plan's shape, calling
// run(std::array<char*, N> ptrs, std::array<int64_t, N> inner_strides, int64_t n).
template <size_t N, class Run>
void walk_range(const LoopPlan<N>& plan, int64_t begin, int64_t end, const Run& run) {
  const int64_t nd = static_cast<int64_t>(plan.shape.size());
  const int64_t inner = plan.shape[nd - 1];
  std::vector<int64_t> idx(nd, 0);
  int64_t rem = begin;
  for (int64_t d = nd - 1; d >= 0; --d) {
    idx[d] = rem % plan.shape[d];
    rem /= plan.shape[d];
  }
  std::array<int64_t, N> inner_stride;
  for (size_t k = 0; k < N; ++k) inner_stride[k] = plan.strides[k][nd - 1];
  int64_t pos = begin;
  while (pos < end) {
    std::array<char*, N> ptrs;
    for (size_t k = 0; k < N; ++k) {
      int64_t off = 0;
      for (int64_t d = 0; d < nd; ++d) off += idx[d] * plan.strides[k][d];
      ptrs[k] = plan.base[k] + off * static_cast<int64_t>(plan.elem_size[k]);
    }
    const int64_t n = std::min(inner - idx[nd - 1], end - pos);
    run(ptrs, inner_stride, n);
    pos += n;
    idx[nd - 1] += n;
    for (int64_t d = nd - 1; d > 0 && idx[d] >= plan.shape[d]; --d) {
      idx[d] = 0;
      ++idx[d - 1];
    }
  }
}

// Runs `run` over the whole iteration space, split across threads.
template <size_t N, class Run>
void for_each_run(const Shape& shape, const std::array<const Tensor*, N>& ops, const Run& run,
                  int64_t grain = kElementwiseGrain) {
  const int64_t total = numel_of(shape);
  if (total == 0) return;
  for (const Tensor* t : ops) {
    // A CUDA tensor here is an op whose CUDA path is missing: say so rather than read device memory.
    COHORT_CHECK(t->device().is_cpu(), DeviceError, "internal: a CPU elementwise loop was given a tensor on ",
                 t->device().str(), "; this op has no CUDA kernel yet (move its inputs to Device::cpu())");
  }
  const LoopPlan<N> plan = make_plan<N>(shape, ops);
  parallel_for(0, total, grain, [&](int64_t b, int64_t e) { walk_range(plan, b, e, run); });
}

// out[i] = f(in[i]) for tensors of out's shape (in may be a broadcast view).
template <class To, class Ti, class F>
void unary_kernel(const Tensor& out, const Tensor& in, const F& f) {
  for_each_run<2>(out.shape(), {&out, &in}, [&](std::array<char*, 2> p, std::array<int64_t, 2> s, int64_t n) {
    To* o = reinterpret_cast<To*>(p[0]);
    const Ti* a = reinterpret_cast<const Ti*>(p[1]);
    if (s[0] == 1 && s[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(a[i * s[1]]);
    }
  });
}

// out[i] = f(a[i], b[i]); a and b are views of out's shape (broadcast strides allowed).
template <class To, class Ta, class Tb, class F>
void binary_kernel(const Tensor& out, const Tensor& a, const Tensor& b, const F& f) {
  for_each_run<3>(out.shape(), {&out, &a, &b}, [&](std::array<char*, 3> p, std::array<int64_t, 3> s, int64_t n) {
    To* o = reinterpret_cast<To*>(p[0]);
    const Ta* x = reinterpret_cast<const Ta*>(p[1]);
    const Tb* y = reinterpret_cast<const Tb*>(p[2]);
    if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {
      const Tb yv = *y;
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], yv);
    } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {
      const Ta xv = *x;
      for (int64_t i = 0; i < n; ++i) o[i] = f(xv, y[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(x[i * s[1]], y[i * s[2]]);
    }
  });
}

// out[i] = f(a[i], b[i], c[i]).
template <class To, class Ta, class Tb, class Tc, class F>
void ternary_kernel(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& c, const F& f) {
  for_each_run<4>(out.shape(), {&out, &a, &b, &c},
                  [&](std::array<char*, 4> p, std::array<int64_t, 4> s, int64_t n) {
    To* o = reinterpret_cast<To*>(p[0]);
    const Ta* x = reinterpret_cast<const Ta*>(p[1]);
    const Tb* y = reinterpret_cast<const Tb*>(p[2]);
    const Tc* z = reinterpret_cast<const Tc*>(p[3]);
    for (int64_t i = 0; i < n; ++i) o[i * s[0]] = f(x[i * s[1]], y[i * s[2]], z[i * s[3]]);
  });
}

}  // namespace cohort::detail
