// Tensor: a strided view of shared storage, with a dtype, a device and (optionally) autograd state.
//
//   using namespace cohort;
//   Tensor w = randn({3, 2}, gen).requires_grad_();
//   Tensor x = ones({4, 3});
//   Tensor loss = relu(matmul(x, w)).sum();
//   loss.backward();            // w.grad() is now d loss / d w, shape (3, 2)
//
// Copying a Tensor copies a handle (like std::shared_ptr): both handles see the same data. Views
// (reshape of a contiguous tensor, permute, transpose, narrow, slice, expand, squeeze, unsqueeze)
// share storage with their base; clone() and contiguous() of a non-contiguous tensor copy.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "cohort/core/device.h"
#include "cohort/core/dtype.h"
#include "cohort/core/shape.h"
#include "cohort/core/storage.h"

namespace cohort {

class Node;
class Tensor;
struct AutogradMeta;

struct TensorOptions {
  DType dtype = DType::f32;
  Device device = Device::cpu();
  bool requires_grad = false;

  TensorOptions() = default;
  TensorOptions(DType d) : dtype(d) {}  // NOLINT: lets zeros({2}, DType::i64) read naturally
  TensorOptions& with_dtype(DType d) { dtype = d; return *this; }
  TensorOptions& with_device(Device d) { device = d; return *this; }
  TensorOptions& with_requires_grad(bool r) { requires_grad = r; return *this; }
};

// A hook run when a leaf's gradient for this backward pass is final (all contributions summed
// into leaf.grad()). Data parallelism is built on exactly this.
using GradHook = std::function<void(Tensor& leaf)>;

class TensorImpl {
 public:
  TensorImpl(Storage storage, int64_t offset, Shape shape, Strides strides, DType dtype);
  ~TensorImpl();

  Storage storage_;
  int64_t offset_;  // in elements
  Shape shape_;
  Strides strides_;
  DType dtype_;
  std::unique_ptr<AutogradMeta> autograd_;  // null until autograd touches the tensor
};

class Tensor {
 public:
  Tensor() = default;  // undefined: holds nothing
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised memory of the given shape.
  static Tensor empty(const Shape& shape, TensorOptions options = {});

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  const Strides& strides() const;
  int64_t size(int64_t dim) const;  // negative dims count from the end
  int64_t stride(int64_t dim) const;
  int64_t dim() const;
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  size_t element_size() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * element_size(); }
  int64_t storage_offset() const;
  bool is_contiguous() const;
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  const Storage& storage() const;

  // Pointer to the first element. T must match dtype() exactly (checked).
  template <class T> T* data_ptr() const;
  void* raw_data() const;  // untyped pointer to the first element

  // The value of a one-element tensor.
  template <class T> T item() const;
  double item() const;

  // ---- views (share storage) ----
  Tensor view(const Shape& shape) const;     // must be viewable without copying
  Tensor reshape(const Shape& shape) const;  // view when possible, else a copy; one dim may be -1
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // drops `dim`
  Tensor expand(const Shape& shape) const;           // -1 keeps a size
  Tensor squeeze() const;
  Tensor squeeze(int64_t dim) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;

  // ---- copies and conversions ----
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;   // itself when already that dtype
  // A copy on `device` (itself when already there), differentiable. From a CUDA device the host
  // waits for the copy; with non_blocking and pinned host memory (pin_memory()) it does not.
  Tensor to(Device device, bool non_blocking = false) const;
  // A copy in page-locked host memory (itself when already pinned): host <-> GPU copies from it can
  // run asynchronously. CPU tensors only; needs a CUDA build.
  Tensor pin_memory() const;
  bool is_pinned() const;
  bool is_cuda() const { return device().is_cuda(); }
  Tensor& copy_(const Tensor& src);  // broadcasts src, converts dtype
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& requires_grad_(bool requires_grad = true);
  bool is_leaf() const;  // no grad_fn
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor grad() const;  // undefined until a backward pass reached this leaf
  void set_grad(const Tensor& grad);
  Tensor detach() const;  // same storage, no history
  // Computes gradients of this tensor (a scalar, unless `gradient` is given) into the leaves.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  // Runs `hook` each time this leaf's gradient is final; returns a handle for remove_hook().
  int register_hook(GradHook hook);
  void remove_hook(int handle);

  // ---- operators (see ops/elementwise.h for the full list of ops) ----
  Tensor operator-() const;
  Tensor& operator+=(const Tensor& other);  // in place, no autograd history allowed
  Tensor& operator-=(const Tensor& other);
  Tensor& operator*=(const Tensor& other);
  Tensor& operator*=(double other);
  Tensor sum() const;
  Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;

  std::string str() const;  // PyTorch-like printing
  std::string shape_str() const;

  // Makes this tensor (every handle to it) hold src's data: its storage, offset, shape, strides and
  // dtype, keeping this tensor's autograd identity (requires_grad, hooks). PyTorch's `p.data = src`;
  // Module::to(Device) moves parameters with it. No history is recorded.
  void set_data(const Tensor& src);

  // For the library's own use.
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  AutogradMeta& autograd_meta() const;  // created on first use

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

// ---- template definitions ----
template <class T>
T* Tensor::data_ptr() const {
  COHORT_CHECK(defined(), ValueError, "data_ptr: the tensor is undefined");
  COHORT_CHECK(dtype() == dtype_of<T>(), DTypeError, "data_ptr: the tensor has dtype ",
               dtype_name(dtype()), " but data_ptr was asked for ", dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}

template <class T>
T Tensor::item() const {
  COHORT_CHECK(defined() && numel() == 1, ShapeError,
               "item: expected a tensor with one element, got shape ", shape_str());
  return to(Device::cpu()).contiguous().to(dtype_of<T>()).template data_ptr<T>()[0];
}

}  // namespace cohort
