// cat and stack (new tensors) and split and chunk (views), with gradients.
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "../cuda/index-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/indexing.h"
#include "cohort/core/parallel_for.h"

namespace cohort {

namespace {

std::string shapes_str(const std::vector<Tensor>& tensors) {
  std::string s;
  for (size_t i = 0; i < tensors.size(); ++i) s += (i ? ", " : "") + tensors[i].shape_str();
  return s;
}

void check_list(const std::vector<Tensor>& tensors, const char* op) {
  COHORT_CHECK(!tensors.empty(), ValueError, op, ": expected at least one tensor, got an empty list");
  for (size_t i = 0; i < tensors.size(); ++i) {
    COHORT_CHECK(tensors[i].defined(), ValueError, op, ": tensor ", i, " is undefined");
    COHORT_CHECK(tensors[i].dtype() == tensors[0].dtype(), DTypeError, op,
                 ": all tensors must have the same dtype, got ", dtype_name(tensors[0].dtype()), " (tensor 0) and ",
                 dtype_name(tensors[i].dtype()), " (tensor ", i, "); convert them with .to() first");
    COHORT_CHECK(tensors[i].device() == tensors[0].device(), DeviceError, op,
                 ": all tensors must be on one device, got ", tensors[0].device().str(), " (tensor 0) and ",
                 tensors[i].device().str(), " (tensor ", i, "); move them with .to(", tensors[0].device().str(),
                 ") first");
  }
}

// Copies each input into its slot of `out` (the inputs already checked to fit). Rows are the
// (outer) index over the dims before `dim`: row o of the output is row o of every input, one after
// the other. With contiguous inputs and more than one row, threads take ranges of rows and copy
// bytes; otherwise each input is copied through a narrow view of the output (itself parallel).
// On CUDA: one launch per input, a row copy for a contiguous input, else the strided copy kernel.
void copy_into(const Tensor& out, const std::vector<Tensor>& tensors, int64_t dim) {
  if (out.is_cuda()) {
    int64_t offset = 0;
    for (const Tensor& t : tensors) {
      if (t.numel() > 0) {
        if (t.is_contiguous()) {
          detail::cuda::copy_into_slice(out, t, dim, offset);
        } else {
          out.narrow(dim, offset, t.size(dim)).copy_(t.detach());
        }
      }
      offset += t.size(dim);
    }
    return;
  }
  int64_t outer = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= out.size(d);
  bool all_contiguous = true;
  for (const Tensor& t : tensors) all_contiguous = all_contiguous && t.is_contiguous();
  if (outer == 1 || !all_contiguous) {
    int64_t offset = 0;
    for (const Tensor& t : tensors) {
      out.narrow(dim, offset, t.size(dim)).copy_(t.detach());
      offset += t.size(dim);
    }
    return;
  }
  const size_t elem = out.element_size();
  const int64_t out_row = out.numel() / outer * static_cast<int64_t>(elem);  // bytes
  std::vector<int64_t> row_bytes(tensors.size());
  std::vector<const char*> src(tensors.size());
  for (size_t k = 0; k < tensors.size(); ++k) {
    row_bytes[k] = tensors[k].numel() / outer * static_cast<int64_t>(elem);
    src[k] = static_cast<const char*>(tensors[k].raw_data());
  }
  char* dst = static_cast<char*>(out.raw_data());
  parallel_for(0, outer, std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(out_row, 1)), [&](int64_t b, int64_t e) {
    for (int64_t o = b; o < e; ++o) {
      char* d = dst + o * out_row;
      for (size_t k = 0; k < tensors.size(); ++k) {
        if (row_bytes[k] == 0) continue;
        std::memcpy(d, src[k] + o * row_bytes[k], static_cast<size_t>(row_bytes[k]));
        d += row_bytes[k];
      }
    }
  });
}

}  // namespace

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim_in) {
  check_list(tensors, "cat");
  const int64_t nd = tensors[0].dim();
  COHORT_CHECK(nd > 0, ShapeError, "cat: 0-dim tensors cannot be concatenated (shapes ", shapes_str(tensors),
               "); use stack, or unsqueeze them first");
  const int64_t dim = wrap_dim(dim_in, nd, "cat");
  Shape out_shape = tensors[0].shape();
  out_shape[dim] = 0;
  for (const Tensor& t : tensors) {
    bool fits = t.dim() == nd;
    for (int64_t d = 0; d < nd && fits; ++d) fits = d == dim || t.size(d) == out_shape[d];
    COHORT_CHECK(fits, ShapeError, "cat: tensors must have the same shape except in dim ", dim, ", got shapes ",
                 shapes_str(tensors));
    out_shape[dim] += t.size(dim);
  }
  Tensor out = Tensor::empty(out_shape, TensorOptions(tensors[0].dtype()).with_device(tensors[0].device()));
  copy_into(out, tensors, dim);
  std::vector<int64_t> sizes;
  for (const Tensor& t : tensors) sizes.push_back(t.size(dim));
  return record(out, "cat", tensors, [sizes, dim](const Tensor& g, const GradNeeds& needs) {
    std::vector<Tensor> r(sizes.size());
    int64_t offset = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      if (needs[i]) r[i] = g.narrow(dim, offset, sizes[i]);
      offset += sizes[i];
    }
    return r;
  });
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim_in) {
  check_list(tensors, "stack");
  for (const Tensor& t : tensors) {
    COHORT_CHECK(t.shape() == tensors[0].shape(), ShapeError, "stack: all tensors must have the same shape, got ",
                 shapes_str(tensors));
  }
  const int64_t dim = wrap_dim(dim_in, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(tensors.size());
  for (const Tensor& t : tensors) parts.push_back(t.unsqueeze(dim));
  return cat(parts, dim);
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim_in) {
  COHORT_CHECK(x.defined(), ValueError, "split: the input tensor is undefined");
  COHORT_CHECK(x.dim() > 0, ShapeError, "split: a 0-dim tensor cannot be split");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    COHORT_CHECK(s >= 0, ValueError, "split: sizes must be non-negative, got ", shape_str(sizes));
    total += s;
  }
  COHORT_CHECK(total == x.size(dim), ShapeError, "split: sizes ", shape_str(sizes), " sum to ", total, " but dim ", dim,
               " of shape ", x.shape_str(), " has size ", x.size(dim));
  std::vector<Tensor> pieces;
  pieces.reserve(sizes.size());
  int64_t offset = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(dim, offset, s));
    offset += s;
  }
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim_in) {
  COHORT_CHECK(x.defined(), ValueError, "split: the input tensor is undefined");
  COHORT_CHECK(x.dim() > 0, ShapeError, "split: a 0-dim tensor cannot be split");
  COHORT_CHECK(split_size > 0, ValueError, "split: split_size must be positive, got ", split_size);
  const int64_t dim = wrap_dim(dim_in, x.dim(), "split");
  const int64_t n = x.size(dim);
  // An empty dim splits into one empty piece, like PyTorch.
  if (n == 0) return {x.narrow(dim, 0, 0)};
  std::vector<int64_t> sizes;
  for (int64_t start = 0; start < n; start += split_size) sizes.push_back(std::min(split_size, n - start));
  return split(x, sizes, dim);
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim_in) {
  COHORT_CHECK(x.defined(), ValueError, "chunk: the input tensor is undefined");
  COHORT_CHECK(chunks > 0, ValueError, "chunk: chunks must be positive, got ", chunks);
  COHORT_CHECK(x.dim() > 0, ShapeError, "chunk: a 0-dim tensor cannot be chunked");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "chunk");
  // PyTorch's rule: pieces of ceil(n / chunks), so there may be fewer than `chunks` of them.
  const int64_t n = x.size(dim);
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), dim);
}

}  // namespace cohort
