// Copies and conversions: contiguous, clone, to(dtype), copy_, fill_.
#include "../cuda/elementwise-ops-impl.h"
#include "../cuda/transfer-impl.h"
#include "../ops/cast-impl.h"
#include "../ops/loops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/tensor.h"

namespace cohort {

namespace {

// dst[i] = cast(src[i]) with src already of dst's shape (or a broadcast view of it), on dst's device.
void copy_kernel(const Tensor& dst, const Tensor& src) {
  if (dst.device().is_cuda()) {
    detail::cuda::copy(dst, src);
    return;
  }
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
  Tensor from = src.detach();
  if (from.device() != device()) from = from.to(device());  // across devices: move, then convert
  copy_kernel(*this, from.expand(shape()));
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::fill_(double value) {
  check_writable(*this, "fill_");
  if (device().is_cuda()) {
    detail::cuda::fill(*this, value);
    storage()->bump_version();
    return *this;
  }
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

Tensor Tensor::to(Device target, bool non_blocking) const {
  COHORT_CHECK(defined(), ValueError, "to: the tensor is undefined");
  check_device_available(target, "to");
  if (target == device()) return *this;
  // Contiguous on the source device first (one copy kernel there, or none), then one transfer.
  const Tensor src = detach().contiguous();
  Tensor out = Tensor::empty(shape(), TensorOptions(dtype()).with_device(target));
  detail::cuda::copy_across(out, src, non_blocking);
  const Device from = device();
  return record(out, "to", {*this}, [from](const Tensor& g, const GradNeeds&) { return grads(g.to(from)); });
}

Tensor Tensor::pin_memory() const {
  COHORT_CHECK(defined(), ValueError, "pin_memory: the tensor is undefined");
  COHORT_CHECK(device().is_cpu(), DeviceError, "pin_memory: only CPU tensors can be pinned, this one is on ",
               device().str());
  if (is_pinned()) return *this;
  auto storage = std::make_shared<StorageImpl>(nbytes(), Device::cpu(), /*pinned=*/true);
  Tensor out(std::make_shared<TensorImpl>(std::move(storage), 0, shape(), contiguous_strides(shape()), dtype()));
  copy_kernel(out, detach());
  return out;
}

bool Tensor::is_pinned() const { return defined() && storage()->is_pinned(); }

}  // namespace cohort
