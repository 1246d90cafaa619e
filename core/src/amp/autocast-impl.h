// How the ops that autocast covers (amp.h) ask whether to cast their inputs (implementation-only).
//
//   Tensor matmul(const Tensor& a, const Tensor& b) {
//     if (const auto dt = detail::autocast_dtype_for({a, b}))
//       return matmul(detail::autocast_cast(a, *dt), detail::autocast_cast(b, *dt));
//     ...
//
// The second call finds every eligible input already in the dtype and runs the op itself.
#pragma once

#include <initializer_list>
#include <optional>

#include "cohort/core/tensor.h"

namespace cohort::detail {

// The dtype to cast `inputs` to, or nullopt when autocast does not apply: it is off for CUDA on this
// thread, a defined input is not on a CUDA device, or no eligible input (f32, bf16, f16) has a
// dtype other than the autocast one.
std::optional<DType> autocast_dtype_for(std::initializer_list<Tensor> inputs);

// t.to(dt) when t is eligible (defined, f32, bf16 or f16; not f64, not integer); otherwise t.
Tensor autocast_cast(const Tensor& t, DType dt);

}  // namespace cohort::detail
