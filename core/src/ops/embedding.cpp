// embedding: rows of a weight table picked by integer indices, with the gradient to the table.
//
// On CUDA the rows are copied by the index_select kernel and the gradient is summed with atomics
// (cuda/index-ops-impl.h): rows picked several times then add in no fixed order. Indices may be on
// the CPU (checked there, then copied over) or on the weight's device (checked by the kernel).
#include <algorithm>

#include "../cuda/index-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/indexing.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/parallel_for.h"

namespace cohort {

namespace {

// Throws IndexError for the first entry of `flat` (i64, contiguous, on the CPU) outside [0, num).
void check_indices(const Tensor& flat, int64_t num, const Tensor& weight) {
  const int64_t* ip = flat.data_ptr<int64_t>();
  for (int64_t i = 0; i < flat.numel(); ++i) {
    COHORT_CHECK(ip[i] >= 0 && ip[i] < num, IndexError, "embedding: index ", ip[i],
                 " is out of range for a weight with ", num, " rows (shape ", weight.shape_str(),
                 "; expected 0 <= index < ", num, ")");
  }
}

// d weight: row flat[i] of a zero table gets g row i added, for every i. A row picked several
// times sums its gradients in index order: threads split the columns, never the indices, so no
// two threads touch one element and the sums are the same bits on any thread count. 16-bit
// tables accumulate in f32, so a frequent token's many small contributions are not each rounded
// to 8 bits of mantissa.
Tensor embedding_backward(const Tensor& g, const Tensor& flat, const Shape& w_shape, DType w_dtype) {
  const DType acc = (w_dtype == DType::bf16 || w_dtype == DType::f16) ? DType::f32 : w_dtype;
  const int64_t dim = w_shape[1], L = flat.numel();
  Tensor gw = zeros(w_shape, TensorOptions(acc).with_device(g.device()));  // (num, dim)
  const Tensor gr = g.reshape({L, dim}).to(acc).contiguous();              // (L, dim)
  if (gw.is_cuda()) {
    detail::cuda::index_add(gw, gr, flat, 1, w_shape[0], dim, /*check=*/false);  // checked by the forward
    return gw.to(w_dtype);
  }
  const int64_t* ip = flat.data_ptr<int64_t>();
  auto add_rows = [&](auto tag) {
    using A = decltype(tag);
    A* out = gw.data_ptr<A>();
    const A* in = gr.data_ptr<A>();
    // At least 16 columns (a 64-byte line of f32) per thread, so threads do not share lines.
    const int64_t grain = std::max<int64_t>(16, 32768 / std::max<int64_t>(L, 1));
    parallel_for(0, dim, grain, [&](int64_t cb, int64_t ce) {
      for (int64_t i = 0; i < L; ++i) {
        A* dst = out + ip[i] * dim;
        const A* src = in + i * dim;
        for (int64_t j = cb; j < ce; ++j) dst[j] += src[j];
      }
    });
  };
  if (acc == DType::f64)
    add_rows(double{});
  else
    add_rows(float{});
  return gw.to(w_dtype);
}

}  // namespace

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  COHORT_CHECK(weight.defined() && indices.defined(), ValueError, "embedding: weight or indices is undefined");
  COHORT_CHECK(weight.dim() == 2, ShapeError, "embedding: weight must be (num_embeddings, embedding_dim), got shape ",
               weight.shape_str());
  COHORT_CHECK(indices.dtype() == DType::i64 || indices.dtype() == DType::i32, DTypeError,
               "embedding: indices must be i64 or i32, got ", dtype_name(indices.dtype()));
  COHORT_CHECK(indices.device().is_cpu() || indices.device() == weight.device(), DeviceError,
               "embedding: the weight is on ", weight.device().str(), " but the indices are on ",
               indices.device().str(), "; move the indices with .to(", weight.device().str(), ") first");
  const int64_t num = weight.size(0), dim = weight.size(1);
  Tensor flat = indices.detach().reshape({-1}).to(DType::i64).contiguous();  // (L)
  Shape out_shape = indices.shape();
  out_shape.push_back(dim);
  Tensor out;
  if (weight.is_cuda()) {
    const bool on_device = flat.is_cuda();
    if (!on_device) {
      check_indices(flat, num, weight);
      flat = flat.to(weight.device());
    }
    out = Tensor::empty({flat.numel(), dim}, TensorOptions(weight.dtype()).with_device(weight.device()));
    if (!detail::cuda::index_select(out, weight.detach().contiguous(), flat, 1, num, dim, /*check=*/on_device)) {
      check_indices(flat.to(Device::cpu()), num, weight);  // throws for the first bad entry
      COHORT_THROW(IndexError, "embedding: internal: the device reported an index out of range for a weight with ",
                   num, " rows but the host found none");
    }
    out = out.reshape(out_shape);  // (..., dim)
  } else {
    check_indices(flat, num, weight);
    out = index_select(weight.detach(), 0, flat).reshape(out_shape);  // (..., dim)
  }
  const Shape w_shape = weight.shape();
  const DType w_dtype = weight.dtype();
  return record(out, "embedding", {weight}, [flat, w_shape, w_dtype](const Tensor& g, const GradNeeds&) {
    return grads(embedding_backward(g, flat, w_shape, w_dtype));
  });
}

}  // namespace cohort
