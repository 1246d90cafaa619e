// Copies and conversions: contiguous, clone, to(dtype), copy_, fill_.
#include "../ops/cast-impl.h"
#include "../ops/loops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/tensor.h"

namespace cohort {

namespace {

// dst[i] = cast(src[i]) with src already of dst's shape (or a broadcast view of it).
void copy_kernel(const Tensor& dst, const Tensor& src) {
  dispatch(dst.dtype(), "copy", [&](auto out_tag) {
    using To = decltype(out_tag);
    dispatch(src.dtype(), "copy", [&](auto in_tag) {
      using Ti = decltype(in_tag);
      detail::unary_kernel<To, Ti>(dst, src, [](Ti v) { return detail::cast<To>(v); });
    });
  });
}

void check_writable(const Tensor& self, const char* op) {
  COHORT_CHECK(!(GradMode::is_enabled() && self.requires_grad()), AutogradError, op,
               ": in-place write to a tensor that requires grad while grad mode is on; do it inside a "
               "NoGradGuard scope (as optimizers do) or write to a detached copy");
}

}  // namespace

Tensor& Tensor::copy_(const Tensor& src) {
  check_writable(*this, "copy_");
  COHORT_CHECK(src.defined(), ValueError, "copy_: the source tensor is undefined");
  const Shape target = broadcast_shapes(src.shape(), shape(), "copy_");
  COHORT_CHECK(target == shape(), ShapeError, "copy_: source of shape ", src.shape_str(),
               " cannot be broadcast to the destination's shape ", shape_str());
  check_device_available(device(), "copy_");
  copy_kernel(*this, src.detach().expand(shape()));
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_writable(*this, "fill_");
  dispatch(dtype(), "fill_", [&](auto tag) {
    using T = decltype(tag);
    const T v = detail::cast<T>(value);
    detail::for_each_run<1>(shape(), {this}, [v](std::array<char*, 1> p, std::array<int64_t, 1> s, int64_t n) {
      T* o = reinterpret_cast<T*>(p[0]);
      for (int64_t i = 0; i < n; ++i) o[i * s[0]] = v;  // writes only: the old contents may be garbage
    });
  });
  storage()->bump_version();
  return *this;
}

Tensor Tensor::clone() const {
  Tensor out = Tensor::empty(shape(), TensorOptions(dtype()).with_device(device()));
  copy_kernel(out, *this);
  return record(out, "clone", {*this}, [](const Tensor& g, const GradNeeds&) { return grads(g); });
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType target) const {
  if (target == dtype()) return *this;
  Tensor out = Tensor::empty(shape(), TensorOptions(target).with_device(device()));
  copy_kernel(out, *this);
  if (!is_floating(target) || !is_floating(dtype())) return out;  // no gradient through integers
  const DType from = dtype();
  return record(out, "to", {*this}, [from](const Tensor& g, const GradNeeds&) { return grads(g.to(from)); });
}

Tensor Tensor::to(Device target) const {
  check_device_available(target, "to");
  if (target == device()) return *this;
  COHORT_THROW(DeviceError, "to: copying from ", device().str(), " to ", target.str(), " is not supported");
}

}  // namespace cohort
