// View ops: new shape/strides/offset over the same storage, each with its gradient.
#include <numeric>

#include "cohort/core/autograd.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/tensor.h"

namespace cohort {

namespace {

Tensor make_view(const Tensor& base, Shape shape, Strides strides, int64_t offset) {
  return Tensor(std::make_shared<TensorImpl>(base.storage(), offset, std::move(shape), std::move(strides),
                                             base.dtype()));
}

// Strides for viewing `t` as `shape` without copying, or empty when impossible (same algorithm as
// PyTorch's computeStride: walk both shapes, matching chunks of contiguous-in-memory dims).
bool view_strides(const Shape& old_shape, const Strides& old_strides, const Shape& shape, Strides* out) {
  const int64_t numel = numel_of(old_shape);
  Strides st(shape.size());
  if (numel == 0 || old_shape.empty()) {
    *out = contiguous_strides(shape);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        st[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return false;
  *out = std::move(st);
  return true;
}

Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Shape& from) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      COHORT_CHECK(infer < 0, ShapeError, op, ": only one dim may be -1, got ", shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      COHORT_CHECK(out[i] >= 0, ShapeError, op, ": invalid size ", out[i], " in shape ", shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    COHORT_CHECK(known != 0 && numel % known == 0, ShapeError, op, ": shape ", shape_str(shape),
                 " is invalid for a tensor of shape ", shape_str(from), " (", numel, " elements)");
    out[infer] = numel / known;
  } else {
    COHORT_CHECK(known == numel, ShapeError, op, ": shape ", shape_str(shape), " is invalid for a tensor of shape ",
                 shape_str(from), " (", numel, " elements)");
  }
  return out;
}

// Gradient of a view that picks a region: scatter the grad into zeros of the input's shape (on the
// input's device) through the same view.
template <class MakeView>
Tensor record_region_view(const Tensor& out, const Tensor& self, const char* name, MakeView make) {
  const Shape in_shape = self.shape();
  const TensorOptions options = TensorOptions(self.dtype()).with_device(self.device());
  return record(out, name, {self}, [in_shape, options, make](const Tensor& g, const GradNeeds&) {
    Tensor gi = zeros(in_shape, options);
    make(gi).copy_(g);
    return grads(gi);
  });
}

}  // namespace

Tensor Tensor::view(const Shape& shape) const {
  const Shape target = infer_shape(shape, numel(), "view", this->shape());
  Strides st;
  COHORT_CHECK(view_strides(this->shape(), strides(), target, &st), ShapeError, "view: a tensor of shape ",
               shape_str(), " with strides ", cohort::shape_str(strides()), " cannot be viewed as ",
               cohort::shape_str(target), " without copying; use reshape() (which copies) or contiguous() first");
  Tensor out = make_view(*this, target, st, storage_offset());
  const Shape in_shape = this->shape();
  return record(out, "view", {*this},
                [in_shape](const Tensor& g, const GradNeeds&) { return grads(g.reshape(in_shape)); });
}

Tensor Tensor::reshape(const Shape& shape) const {
  const Shape target = infer_shape(shape, numel(), "reshape", this->shape());
  Strides st;
  if (view_strides(this->shape(), strides(), target, &st)) return view(target);
  return contiguous().view(target);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int64_t n = dim();
  COHORT_CHECK(static_cast<int64_t>(dims.size()) == n, ShapeError, "permute: expected ", n,
               " dims for a tensor of shape ", shape_str(), ", got ", dims.size());
  Shape sh(n);
  Strides st(n);
  std::vector<int64_t> inverse(n, -1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = wrap_dim(dims[i], n, "permute");
    COHORT_CHECK(inverse[d] < 0, ValueError, "permute: dim ", d, " appears twice in ", cohort::shape_str(dims));
    inverse[d] = i;
    sh[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = make_view(*this, sh, st, storage_offset());
  return record(out, "permute", {*this},
                [inverse](const Tensor& g, const GradNeeds&) { return grads(g.permute(inverse)); });
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  const int64_t n = dim();
  std::vector<int64_t> dims(n);
  std::iota(dims.begin(), dims.end(), 0);
  if (n == 0) return permute(dims);
  std::swap(dims[wrap_dim(dim0, n, "transpose")], dims[wrap_dim(dim1, n, "transpose")]);
  return permute(dims);
}

Tensor Tensor::t() const {
  COHORT_CHECK(dim() <= 2, ShapeError, "t: expects a tensor with at most 2 dims, got shape ", shape_str(),
               "; use transpose(dim0, dim1)");
  return dim() < 2 ? *this : transpose(0, 1);
}

Tensor Tensor::slice(int64_t dim_, int64_t start, int64_t end, int64_t step) const {
  const int64_t d = wrap_dim(dim_, dim(), "slice");
  COHORT_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  const int64_t size = shape()[d];
  if (start < 0) start += size;
  if (end < 0) end += size;
  start = std::min(std::max<int64_t>(start, 0), size);
  end = std::min(std::max<int64_t>(end, start), size);
  Shape sh = shape();
  Strides st = strides();
  sh[d] = (end - start + step - 1) / step;
  st[d] *= step;
  Tensor out = make_view(*this, sh, st, storage_offset() + start * strides()[d]);
  return record_region_view(out, *this, "slice",
                            [d, start, end, step](const Tensor& t) { return t.slice(d, start, end, step); });
}

Tensor Tensor::narrow(int64_t dim_, int64_t start, int64_t length) const {
  const int64_t d = wrap_dim(dim_, dim(), "narrow");
  const int64_t size = shape()[d];
  if (start < 0) start += size;
  COHORT_CHECK(start >= 0 && length >= 0 && start + length <= size, IndexError, "narrow: start ", start,
               " and length ", length, " do not fit in dim ", d, " of size ", size, " (shape ", shape_str(), ")");
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim_, int64_t index) const {
  const int64_t d = wrap_dim(dim_, dim(), "select");
  const int64_t size = shape()[d];
  COHORT_CHECK(index >= -size && index < size, IndexError, "select: index ", index, " is out of range for dim ",
               d, " of size ", size, " (shape ", shape_str(), ")");
  if (index < 0) index += size;
  Shape sh = shape();
  Strides st = strides();
  const int64_t offset = storage_offset() + index * st[d];
  sh.erase(sh.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(*this, sh, st, offset);
  return record_region_view(out, *this, "select", [d, index](const Tensor& t) { return t.select(d, index); });
}

Tensor Tensor::expand(const Shape& shape_) const {
  const int64_t n = static_cast<int64_t>(shape_.size()), own = dim();
  COHORT_CHECK(n >= own, ShapeError, "expand: cannot expand shape ", shape_str(), " to ", cohort::shape_str(shape_),
               " with fewer dims");
  Shape sh(n);
  Strides st(n);
  for (int64_t i = n - 1; i >= 0; --i) {
    const int64_t j = i - (n - own);
    const int64_t have = j >= 0 ? shape()[j] : 1;
    const int64_t want = shape_[i] == -1 ? have : shape_[i];
    COHORT_CHECK(j >= 0 || shape_[i] != -1, ShapeError, "expand: -1 is not allowed for a new leading dim in ",
                 cohort::shape_str(shape_));
    COHORT_CHECK(have == want || have == 1, ShapeError, "expand: shape ", shape_str(), " cannot be expanded to ",
                 cohort::shape_str(shape_), ": dim ", i, " has size ", have, " and is not 1");
    sh[i] = want;
    st[i] = (j >= 0 && have == want) ? strides()[j] : 0;
  }
  Tensor out = make_view(*this, sh, st, storage_offset());
  const Shape in_shape = shape();
  return record(out, "expand", {*this},
                [in_shape](const Tensor& g, const GradNeeds&) { return grads(sum_to(g, in_shape)); });
}

Tensor Tensor::squeeze() const {
  Shape sh;
  for (int64_t s : shape())
    if (s != 1) sh.push_back(s);
  return reshape(sh);
}

Tensor Tensor::squeeze(int64_t dim_) const {
  if (dim() == 0) return *this;
  const int64_t d = wrap_dim(dim_, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape sh = shape();
  sh.erase(sh.begin() + d);
  return reshape(sh);
}

Tensor Tensor::unsqueeze(int64_t dim_) const {
  const int64_t d = wrap_dim(dim_, dim() + 1, "unsqueeze");
  Shape sh = shape();
  sh.insert(sh.begin() + d, 1);
  return reshape(sh);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  COHORT_CHECK(s <= e, ValueError, "flatten: start_dim ", s, " is after end_dim ", e);
  Shape sh(shape().begin(), shape().begin() + s);
  int64_t merged = 1;
  for (int64_t i = s; i <= e; ++i) merged *= shape()[i];
  sh.push_back(merged);
  sh.insert(sh.end(), shape().begin() + e + 1, shape().end());
  return reshape(sh);
}

}  // namespace cohort
