#include "cohort/core/tensor.h"

#include "cohort/core/autograd.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/reduction.h"

namespace cohort {

TensorImpl::TensorImpl(Storage storage, int64_t offset, Shape shape, Strides strides, DType dtype)
    : storage_(std::move(storage)), offset_(offset), shape_(std::move(shape)),
      strides_(std::move(strides)), dtype_(dtype) {}

TensorImpl::~TensorImpl() = default;

Tensor Tensor::empty(const Shape& shape, TensorOptions options) {
  for (int64_t s : shape)
    COHORT_CHECK(s >= 0, ShapeError, "empty: sizes must be non-negative, got shape ", cohort::shape_str(shape));
  const size_t nbytes = static_cast<size_t>(numel_of(shape)) * cohort::element_size(options.dtype);
  auto storage = std::make_shared<StorageImpl>(nbytes, options.device);
  Tensor t(std::make_shared<TensorImpl>(std::move(storage), 0, shape, contiguous_strides(shape), options.dtype));
  if (options.requires_grad) t.requires_grad_(true);
  return t;
}

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  COHORT_CHECK(impl != nullptr, ValueError, "tensor: the tensor is undefined (default-constructed)");
  return *impl;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_).shape_; }
const Strides& Tensor::strides() const { return checked(impl_).strides_; }
int64_t Tensor::dim() const { return static_cast<int64_t>(shape().size()); }
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return numel_of(shape()); }
DType Tensor::dtype() const { return checked(impl_).dtype_; }
Device Tensor::device() const { return checked(impl_).storage_->device(); }
size_t Tensor::element_size() const { return cohort::element_size(dtype()); }
int64_t Tensor::storage_offset() const { return checked(impl_).offset_; }
const Storage& Tensor::storage() const { return checked(impl_).storage_; }
std::string Tensor::shape_str() const { return cohort::shape_str(shape()); }

void* Tensor::raw_data() const {
  const TensorImpl& impl = checked(impl_);
  return static_cast<char*>(impl.storage_->data()) + impl.offset_ * static_cast<int64_t>(element_size());
}

bool Tensor::is_contiguous() const {
  const Shape& sh = shape();
  const Strides& st = strides();
  int64_t expected = 1;
  for (size_t i = sh.size(); i-- > 0;) {
    if (sh[i] == 1) continue;
    if (st[i] != expected) return false;
    expected *= sh[i];
  }
  return true;
}

double Tensor::item() const {
  COHORT_CHECK(defined() && numel() == 1, ShapeError, "item: expected a tensor with one element, got shape ",
               defined() ? shape_str() : std::string("undefined"));
  return to(Device::cpu()).contiguous().to(DType::f64).data_ptr<double>()[0];
}

AutogradMeta& Tensor::autograd_meta() const {
  TensorImpl& impl = const_cast<TensorImpl&>(checked(impl_));
  if (!impl.autograd_) impl.autograd_ = std::make_unique<AutogradMeta>();
  return *impl.autograd_;
}

bool Tensor::requires_grad() const {
  const TensorImpl& impl = checked(impl_);
  return impl.autograd_ && (impl.autograd_->requires_grad || impl.autograd_->grad_fn);
}

Tensor& Tensor::requires_grad_(bool requires_grad) {
  COHORT_CHECK(!requires_grad || is_floating(dtype()), DTypeError,
               "requires_grad_: only floating tensors can require grad, this one is ", dtype_name(dtype()));
  COHORT_CHECK(is_leaf(), AutogradError,
               "requires_grad_: can only be set on leaf tensors; this one was produced by ",
               grad_fn()->name(), " (use detach() first to make a new leaf)");
  autograd_meta().requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const {
  const TensorImpl& impl = checked(impl_);
  return !impl.autograd_ || !impl.autograd_->grad_fn;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  const TensorImpl& impl = checked(impl_);
  return impl.autograd_ ? impl.autograd_->grad_fn : none;
}

Tensor Tensor::grad() const {
  const TensorImpl& impl = checked(impl_);
  return impl.autograd_ ? impl.autograd_->grad : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined()) {
    COHORT_CHECK(grad.shape() == shape(), ShapeError, "set_grad: gradient shape ", grad.shape_str(),
                 " does not match the tensor's shape ", shape_str());
  }
  autograd_meta().grad = grad;
}

void Tensor::set_data(const Tensor& src) {
  COHORT_CHECK(defined() && src.defined(), ValueError, "set_data: a tensor is undefined");
  TensorImpl& impl = *impl_;
  const TensorImpl& from = *src.impl_;
  impl.storage_ = from.storage_;
  impl.offset_ = from.offset_;
  impl.shape_ = from.shape_;
  impl.strides_ = from.strides_;
  impl.dtype_ = from.dtype_;
}

Tensor Tensor::detach() const {
  const TensorImpl& impl = checked(impl_);
  return Tensor(std::make_shared<TensorImpl>(impl.storage_, impl.offset_, impl.shape_, impl.strides_, impl.dtype_));
}

void Tensor::backward(const Tensor& gradient, bool retain_graph) const {
  cohort::backward({*this}, {gradient}, retain_graph);
}

int Tensor::register_hook(GradHook hook) {
  COHORT_CHECK(is_leaf() && requires_grad(), AutogradError,
               "register_hook: hooks fire when a leaf's gradient is final, so the tensor must be a leaf "
               "that requires grad (call requires_grad_() on it first)");
  AutogradMeta& meta = autograd_meta();
  const int id = meta.next_hook_id++;
  meta.hooks.emplace_back(id, std::move(hook));
  return id;
}

void Tensor::remove_hook(int handle) {
  auto& hooks = autograd_meta().hooks;
  for (auto it = hooks.begin(); it != hooks.end(); ++it) {
    if (it->first == handle) {
      hooks.erase(it);
      return;
    }
  }
  COHORT_THROW(ValueError, "remove_hook: no hook with handle ", handle, " on this tensor");
}

Tensor Tensor::operator-() const { return neg(*this); }
Tensor& Tensor::operator+=(const Tensor& other) { return add_(*this, other); }
Tensor& Tensor::operator-=(const Tensor& other) { return add_(*this, other, -1.0); }
Tensor& Tensor::operator*=(const Tensor& other) { return mul_(*this, other); }
Tensor& Tensor::operator*=(double other) { return mul_(*this, other); }
Tensor Tensor::sum() const { return cohort::sum(*this); }
Tensor Tensor::sum(const std::vector<int64_t>& dims, bool keepdim) const { return cohort::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return cohort::mean(*this); }
Tensor Tensor::mean(const std::vector<int64_t>& dims, bool keepdim) const { return cohort::mean(*this, dims, keepdim); }

}  // namespace cohort
