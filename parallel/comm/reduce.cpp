// Reduction kernels for the host backends. Plain element loops that GCC vectorizes for the 32/64-bit
// types: the first pass combines inputs 0 and 1 into out, later passes fold one more input each.
// 16-bit floats (and avg) accumulate in float across all inputs and round once.
#include <algorithm>
#include <cstring>

#include "reduce-impl.h"

namespace cohort::parallel::detail {
namespace {

template <class T, class Op>
void fold(T* out, const void* const* inputs, int n, int64_t count, Op op) {
  const T* a = static_cast<const T*>(inputs[0]);
  const T* b = static_cast<const T*>(inputs[1]);
  for (int64_t i = 0; i < count; ++i) out[i] = op(a[i], b[i]);
  for (int k = 2; k < n; ++k) {
    const T* c = static_cast<const T*>(inputs[k]);
    for (int64_t i = 0; i < count; ++i) out[i] = op(out[i], c[i]);
  }
}

template <class T>
void reduce_plain(T* out, const void* const* inputs, int n, int64_t count, ReduceOp op) {
  switch (op) {
    case ReduceOp::sum:
    case ReduceOp::avg:
      fold<T>(out, inputs, n, count, [](T x, T y) { return static_cast<T>(x + y); });
      break;
    case ReduceOp::max: fold<T>(out, inputs, n, count, [](T x, T y) { return x < y ? y : x; }); break;
    case ReduceOp::min: fold<T>(out, inputs, n, count, [](T x, T y) { return y < x ? y : x; }); break;
  }
  if (op == ReduceOp::avg) {
    const T d = static_cast<T>(n);
    for (int64_t i = 0; i < count; ++i) out[i] = out[i] / d;
  }
}

// 16-bit floats: combine in float, round once per element.
template <class T>
void reduce_half(T* out, const void* const* inputs, int n, int64_t count, ReduceOp op) {
  const T* first = static_cast<const T*>(inputs[0]);
  for (int64_t i = 0; i < count; ++i) {
    float acc = static_cast<float>(first[i]);
    for (int k = 1; k < n; ++k) {
      float v = static_cast<float>(static_cast<const T*>(inputs[k])[i]);
      switch (op) {
        case ReduceOp::sum:
        case ReduceOp::avg: acc += v; break;
        case ReduceOp::max: acc = acc < v ? v : acc; break;
        case ReduceOp::min: acc = v < acc ? v : acc; break;
      }
    }
    if (op == ReduceOp::avg) acc /= static_cast<float>(n);
    out[i] = T(acc);
  }
}

void reduce_bool(bool* out, const void* const* inputs, int n, int64_t count, ReduceOp op) {
  if (op == ReduceOp::min) {
    fold<bool>(out, inputs, n, count, [](bool x, bool y) { return x && y; });
  } else {
    fold<bool>(out, inputs, n, count, [](bool x, bool y) { return x || y; });
  }
}

}  // namespace

void reduce_into(void* out, const void* const* inputs, int n, int64_t count, DType dtype, ReduceOp op) {
  if (n == 1) {
    if (out != inputs[0]) std::memcpy(out, inputs[0], static_cast<size_t>(count) * element_size(dtype));
    return;  // avg over one rank is the value itself
  }
  switch (dtype) {
    case DType::f32: reduce_plain(static_cast<float*>(out), inputs, n, count, op); break;
    case DType::f64: reduce_plain(static_cast<double*>(out), inputs, n, count, op); break;
    case DType::i32: reduce_plain(static_cast<int32_t*>(out), inputs, n, count, op); break;
    case DType::i64: reduce_plain(static_cast<int64_t*>(out), inputs, n, count, op); break;
    case DType::bf16: reduce_half(static_cast<BFloat16*>(out), inputs, n, count, op); break;
    case DType::f16: reduce_half(static_cast<Half*>(out), inputs, n, count, op); break;
    case DType::boolean: reduce_bool(static_cast<bool*>(out), inputs, n, count, op); break;
  }
}

void divide_by(void* data, int64_t count, DType dtype, int divisor) {
  dispatch_floating(dtype, "divide_by", [&](auto tag) {
    using T = decltype(tag);
    T* p = static_cast<T*>(data);
    for (int64_t i = 0; i < count; ++i) p[i] = T(static_cast<acc_t<T>>(p[i]) / static_cast<acc_t<T>>(divisor));
  });
}

}  // namespace cohort::parallel::detail
