// The reference every collective test compares against, computed independently of the backends:
// rank r's input element i is a small integer (exact in every dtype, and sums over a few ranks
// stay exact), and the expected outputs are computed here element by element.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cohort/core/dtype.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel::testing {

// In [-8, 8]; booleans are true for about a third of the elements. `salt` varies the pattern
// between calls so a stale buffer from an earlier collective cannot pass.
inline double input_value(int rank, int64_t i, DType dtype, int salt = 0) {
  const int64_t v = (i * 7 + rank * 13 + salt * 5) % 17;
  if (dtype == DType::boolean) return (v % 3 == 0) ? 1.0 : 0.0;
  return static_cast<double>(v - 8);
}

// Stores `value` as element i of a buffer of dtype.
inline void store(void* buf, int64_t i, DType dtype, double value) {
  dispatch(dtype, "store", [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(buf)[i] = T(static_cast<acc_t<T>>(value));
  });
}

inline double load(const void* buf, int64_t i, DType dtype) {
  return dispatch(dtype, "load", [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(static_cast<acc_t<T>>(static_cast<const T*>(buf)[i]));
  });
}

inline void fill_input(void* buf, int64_t count, DType dtype, int rank, int salt = 0, int64_t offset = 0) {
  for (int64_t i = 0; i < count; ++i) store(buf, i, dtype, input_value(rank, offset + i, dtype, salt));
}

// The reduction over `size` ranks of element i, as the dtype holds it. avg rounds the exact sum's
// quotient the way the dtype's arithmetic does (in float for the 16-bit floats).
inline double expected_reduce(ReduceOp op, int size, int64_t i, DType dtype, int salt = 0) {
  double acc = input_value(0, i, dtype, salt);
  for (int r = 1; r < size; ++r) {
    double v = input_value(r, i, dtype, salt);
    switch (op) {
      case ReduceOp::sum:
      case ReduceOp::avg: acc = dtype == DType::boolean ? (acc || v) : acc + v; break;
      case ReduceOp::max: acc = acc < v ? v : acc; break;
      case ReduceOp::min: acc = v < acc ? v : acc; break;
    }
  }
  if (op != ReduceOp::avg) return acc;
  return dispatch_floating(dtype, "expected_reduce", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    return static_cast<double>(static_cast<A>(T(static_cast<A>(acc) / static_cast<A>(size))));
  });
}

// Number of elements of `buf` that differ from expected(i); the first few are described in `first`.
template <class F>
int64_t count_wrong(const void* buf, int64_t count, DType dtype, F expected, std::string* first = nullptr) {
  int64_t wrong = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double got = load(buf, i, dtype), want = expected(i);
    if (got != want) {
      if (first && wrong < 3) {
        *first += "[" + std::to_string(i) + "] got " + std::to_string(got) + " want " + std::to_string(want) + "; ";
      }
      ++wrong;
    }
  }
  return wrong;
}

inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> d = {DType::f32, DType::f64, DType::bf16, DType::f16,
                                       DType::i32, DType::i64, DType::boolean};
  return d;
}

inline std::vector<ReduceOp> ops_for(DType dtype) {
  if (is_floating(dtype)) return {ReduceOp::sum, ReduceOp::avg, ReduceOp::max, ReduceOp::min};
  return {ReduceOp::sum, ReduceOp::max, ReduceOp::min};
}

}  // namespace cohort::parallel::testing
