// Autocast's per-thread state and the casting rule of the ops it covers (amp.h).
#include "autocast-impl.h"

#include "cohort/core/amp.h"
#include "cohort/core/error.h"

namespace cohort {

namespace {

struct AutocastState {
  bool enabled = false;
  DType dtype = DType::bf16;
};

AutocastState& cuda_state() {
  thread_local AutocastState state;
  return state;
}

bool eligible(const Tensor& t) {
  return t.defined() && (t.dtype() == DType::f32 || t.dtype() == DType::bf16 || t.dtype() == DType::f16);
}

}  // namespace

AutocastGuard::AutocastGuard(DeviceType device, DType dtype, bool enabled) {
  COHORT_CHECK(device == DeviceType::cuda, ValueError,
               "AutocastGuard: only DeviceType::cuda is supported, got the CPU; cohort's CPU kernels already "
               "compute bf16/f16 inputs in f32, so leave CPU code in f32");
  COHORT_CHECK(dtype == DType::bf16 || dtype == DType::f16, ValueError,
               "AutocastGuard: expected DType::bf16 or DType::f16, got ", dtype_name(dtype),
               "; to run a scope in f32, pass enabled = false");
  AutocastState& s = cuda_state();
  previous_enabled_ = s.enabled;
  previous_dtype_ = s.dtype;
  s.enabled = enabled;
  s.dtype = dtype;
}

AutocastGuard::~AutocastGuard() {
  AutocastState& s = cuda_state();
  s.enabled = previous_enabled_;
  s.dtype = previous_dtype_;
}

bool is_autocast_enabled(DeviceType device) { return device == DeviceType::cuda && cuda_state().enabled; }

DType autocast_dtype(DeviceType device) { return cuda_state().dtype; }

namespace detail {

std::optional<DType> autocast_dtype_for(std::initializer_list<Tensor> inputs) {
  const AutocastState& s = cuda_state();
  if (!s.enabled) return std::nullopt;
  bool differs = false;
  for (const Tensor& t : inputs) {
    if (!t.defined()) continue;
    if (!t.device().is_cuda()) return std::nullopt;
    differs = differs || (eligible(t) && t.dtype() != s.dtype);
  }
  return differs ? std::optional<DType>(s.dtype) : std::nullopt;
}

Tensor autocast_cast(const Tensor& t, DType dt) { return eligible(t) ? t.to(dt) : t; }

}  // namespace detail

}  // namespace cohort
