// matmul, bmm and linear, with their gradients. On the CPU the products run through gemm()
// (gemm-impl.h): oneDNN for f32 when available, cohort's blocked loops otherwise; bf16 and f16
// operands are converted to f32, multiplied, and the result rounded back. On a CUDA device they run
// on cuBLAS in the operands' own dtype (cuda/blas.cpp), bf16 and f16 with f32 accumulation, so the
// product accumulates in f32 on every backend. Under an AutocastGuard (amp.h) CUDA operands are
// cast to the autocast dtype first.
#include "cohort/core/ops/linalg.h"

#include <array>
#include <type_traits>

#include "../amp/autocast-impl.h"
#include "../cuda/blas-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/reduction.h"
#include "gemm-impl.h"

namespace cohort {

namespace {

// Rejects integer and mixed dtypes and operands on different devices; returns the common floating
// dtype.
DType product_dtype(const char* op, std::initializer_list<Tensor> operands) {
  const Tensor& first = *operands.begin();
  const DType dt = first.dtype();
  for (const Tensor& t : operands) {
    if (!t.defined()) continue;
    COHORT_CHECK(t.device() == first.device(), DeviceError, op, ": operands are on ", first.device().str(), " and ",
                 t.device().str(), "; move one with .to(", first.device().str(), ") so they match");
    COHORT_CHECK(t.dtype() == dt, DTypeError, op, ": operands have dtypes ", dtype_name(dt), " and ",
                 dtype_name(t.dtype()), "; convert one with .to() so they match");
  }
  dispatch_floating(dt, op, [](auto) {});
  return dt;
}

// bf16 and f16 operands are multiplied in f32 on the CPU; cuBLAS takes them as they are.
bool converts_to_f32(const Tensor& t) { return !t.is_cuda() && (t.dtype() == DType::bf16 || t.dtype() == DType::f16); }

// The batch dims of a (..., r, c) shape.
Shape batch_of(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

// Each matrix of a product must have a unit stride in one of its two dims for the fast kernels;
// other layouts (a strided slice of columns, say) are copied once.
Tensor plain_matrices(const Tensor& t) {
  const int64_t rows = t.size(-2), cols = t.size(-1);
  const int64_t rs = t.stride(-2), cs = t.stride(-1);
  const bool ok = (cs == 1 || cols == 1) || (rs == 1 || rows == 1);
  return ok ? t : t.contiguous();
}

// The batch dims of out = a @ b after broadcasting: size-1 dims dropped and neighbouring dims
// merged wherever all three operands allow it, so most products become one batched call.
struct BatchLayout {
  Shape sizes;
  std::array<Strides, 3> strides;  // a, b, out
};

BatchLayout collapse_batch(const Shape& batch, const std::array<const Tensor*, 3>& ops) {
  BatchLayout l;
  for (size_t d = 0; d < batch.size(); ++d) {
    if (batch[d] == 1) continue;
    bool merge = !l.sizes.empty();
    for (size_t k = 0; k < 3 && merge; ++k) merge = l.strides[k].back() == ops[k]->strides()[d] * batch[d];
    if (merge) {
      l.sizes.back() *= batch[d];
      for (size_t k = 0; k < 3; ++k) l.strides[k].back() = ops[k]->strides()[d];
    } else {
      l.sizes.push_back(batch[d]);
      for (size_t k = 0; k < 3; ++k) l.strides[k].push_back(ops[k]->strides()[d]);
    }
  }
  return l;
}

// out = a @ b (+ bias) for detached operands of at least 2 dims with broadcastable batch dims:
// f32/f64 on the CPU, any floating dtype on a CUDA device. Records nothing.
Tensor matmul_forward(Tensor a, Tensor b, const Tensor& bias = Tensor()) {
  if (!a.is_cuda()) {  // cuBLAS reads the strided and broadcast (expanded) views as they are
    a = plain_matrices(a);
    b = plain_matrices(b);
  }
  const int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  const Shape batch = broadcast_shapes(batch_of(a.shape()), batch_of(b.shape()), "matmul");
  Shape a_shape = batch, b_shape = batch, out_shape = batch;
  a_shape.insert(a_shape.end(), {n, k});
  b_shape.insert(b_shape.end(), {k, m});
  out_shape.insert(out_shape.end(), {n, m});
  const Tensor ae = a.expand(a_shape), be = b.expand(b_shape);
  Tensor out = Tensor::empty(out_shape, TensorOptions(a.dtype()).with_device(a.device()));
  if (out.is_cuda()) {
    detail::cuda::matmul(out, ae, be, bias);
    return out;
  }
  const Tensor bias_c = bias.defined() ? bias.contiguous() : bias;
  BatchLayout l = collapse_batch(batch, {&ae, &be, &out});

  // x @ W: when b is shared by the whole batch and a's batch dim continues its rows, the batch
  // folds into the rows and the product is one (B*n, k) @ (k, m) call.
  int64_t rows = n;
  if (l.sizes.size() == 1 && l.strides[1][0] == 0 && l.strides[0][0] == n * ae.stride(-2) &&
      l.strides[2][0] == n * out.stride(-2)) {
    rows = n * l.sizes[0];
    l = BatchLayout{};
  }

  // The last batch dim goes to gemm as its batch; any dims before it are looped over here.
  const int64_t inner = l.sizes.empty() ? 1 : l.sizes.back();
  const int64_t outer_dims = l.sizes.empty() ? 0 : static_cast<int64_t>(l.sizes.size()) - 1;
  int64_t outer = 1;
  for (int64_t d = 0; d < outer_dims; ++d) outer *= l.sizes[d];

  dispatch_floating(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      for (int64_t o = 0; o < outer; ++o) {
        std::array<int64_t, 3> off{0, 0, 0};
        for (int64_t d = outer_dims - 1, rem = o; d >= 0; --d) {
          const int64_t i = rem % l.sizes[d];
          rem /= l.sizes[d];
          for (size_t q = 0; q < 3; ++q) off[q] += i * l.strides[q][d];
        }
        detail::Gemm<T> g;
        g.batch = inner;
        g.m = rows;
        g.n = m;
        g.k = k;
        const bool batched = !l.sizes.empty();
        g.a = {ae.template data_ptr<T>() + off[0], batched ? l.strides[0].back() : 0, ae.stride(-2), ae.stride(-1)};
        g.b = {be.template data_ptr<T>() + off[1], batched ? l.strides[1].back() : 0, be.stride(-2), be.stride(-1)};
        g.c = {out.template data_ptr<T>() + off[2], batched ? l.strides[2].back() : 0, out.stride(-2), out.stride(-1)};
        g.bias = bias_c.defined() ? bias_c.template data_ptr<T>() : nullptr;
        detail::gemm(g);
      }
    } else {
      COHORT_THROW(DTypeError, "matmul: internal: ", dtype_name(a.dtype()), " must be converted to f32 first");
    }
  });
  return out;
}

// a @ b for operands of at least 2 dims, with its gradient.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const Tensor ad = a.detach(), bd = b.detach();
  Tensor out = matmul_forward(ad, bd);
  return record(out, "matmul", {a, b}, [ad, bd](const Tensor& g, const GradNeeds& needs) {
    Tensor ga, gb;
    if (needs[0]) ga = sum_to(matmul_forward(g, bd.transpose(-1, -2)), ad.shape());
    if (needs[1] && bd.dim() == 2 && ad.dim() > 2) {
      // b was shared by every batch: one (k, B*n) @ (B*n, m) product instead of B and a sum.
      const Tensor a_rows = ad.reshape({-1, ad.size(-1)}), g_rows = g.reshape({-1, g.size(-1)});
      gb = matmul_forward(a_rows.t(), g_rows);
    } else if (needs[1]) {
      gb = sum_to(matmul_forward(ad.transpose(-1, -2), g), bd.shape());
    }
    return grads(ga, gb);
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  COHORT_CHECK(a.defined() && b.defined(), ValueError, "matmul: an operand is undefined");
  if (const auto dt = detail::autocast_dtype_for({a, b})) {
    return matmul(detail::autocast_cast(a, *dt), detail::autocast_cast(b, *dt));
  }
  COHORT_CHECK(a.dim() >= 1 && b.dim() >= 1, ShapeError, "matmul: operands need at least 1 dim, got shapes ",
               a.shape_str(), " and ", b.shape_str());
  const int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  COHORT_CHECK(ka == kb, ShapeError, "matmul: shapes ", a.shape_str(), " and ", b.shape_str(),
               " cannot be multiplied: inner dims ", ka, " and ", kb, " differ");
  if (a.dim() > 2 || b.dim() > 2) {
    const Shape ba = a.dim() > 2 ? batch_of(a.shape()) : Shape{}, bb = b.dim() > 2 ? batch_of(b.shape()) : Shape{};
    for (size_t i = 1; i <= std::min(ba.size(), bb.size()); ++i) {
      const int64_t x = ba[ba.size() - i], y = bb[bb.size() - i];
      COHORT_CHECK(x == y || x == 1 || y == 1, ShapeError, "matmul: shapes ", a.shape_str(), " and ", b.shape_str(),
                   " have batch dims ", shape_str(ba), " and ", shape_str(bb), " that cannot be broadcast");
    }
  }
  const DType dt = product_dtype("matmul", {a, b});
  if (converts_to_f32(a)) return matmul(a.to(DType::f32), b.to(DType::f32)).to(dt);
  // A 1-D operand is a row (left) or column (right) vector; the added dim goes away afterwards.
  Tensor out = matmul_nd(a.dim() == 1 ? a.unsqueeze(0) : a, b.dim() == 1 ? b.unsqueeze(1) : b);
  if (a.dim() == 1) out = out.squeeze(-2);
  if (b.dim() == 1) out = out.squeeze(-1);
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  COHORT_CHECK(a.defined() && b.defined(), ValueError, "bmm: an operand is undefined");
  if (const auto dt = detail::autocast_dtype_for({a, b})) {
    return bmm(detail::autocast_cast(a, *dt), detail::autocast_cast(b, *dt));
  }
  COHORT_CHECK(a.dim() == 3 && b.dim() == 3, ShapeError,
               "bmm: expected 3-D operands (b, n, k) and (b, k, m), got shapes ", a.shape_str(), " and ",
               b.shape_str());
  COHORT_CHECK(a.size(0) == b.size(0), ShapeError, "bmm: shapes ", a.shape_str(), " and ", b.shape_str(),
               " have batch sizes ", a.size(0), " and ", b.size(0), " that differ");
  COHORT_CHECK(a.size(2) == b.size(1), ShapeError, "bmm: shapes ", a.shape_str(), " and ", b.shape_str(),
               " cannot be multiplied: inner dims ", a.size(2), " and ", b.size(1), " differ");
  const DType dt = product_dtype("bmm", {a, b});
  if (converts_to_f32(a)) return bmm(a.to(DType::f32), b.to(DType::f32)).to(dt);
  return matmul_nd(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  COHORT_CHECK(x.defined() && weight.defined(), ValueError, "linear: the input or the weight is undefined");
  if (const auto dt = detail::autocast_dtype_for({x, weight, bias})) {
    return linear(detail::autocast_cast(x, *dt), detail::autocast_cast(weight, *dt), detail::autocast_cast(bias, *dt));
  }
  COHORT_CHECK(weight.dim() == 2, ShapeError, "linear: expected a weight of shape (out, in), got shape ",
               weight.shape_str());
  COHORT_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(1), ShapeError, "linear: input of shape ", x.shape_str(),
               " does not end in ", weight.size(1), " features, as weight of shape ", weight.shape_str(), " expects");
  const int64_t in = weight.size(1), out_features = weight.size(0);
  COHORT_CHECK(!bias.defined() || bias.shape() == Shape{out_features}, ShapeError, "linear: expected a bias of shape (",
               out_features, ") for weight of shape ", weight.shape_str(), ", got shape ", bias.shape_str());
  const DType dt = product_dtype("linear", {x, weight, bias});
  if (converts_to_f32(x)) {
    return linear(x.to(DType::f32), weight.to(DType::f32), bias.defined() ? bias.to(DType::f32) : bias).to(dt);
  }
  // (..., in) -> (rows, in) @ (in, out): weight^T is weight read with swapped strides, no copy,
  // and the bias is added inside the product.
  const Tensor x_rows = x.detach().reshape({-1, in});
  const Tensor wd = weight.detach();
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor out = matmul_forward(x_rows, wd.t(), bias.defined() ? bias.detach() : Tensor()).reshape(out_shape);
  const Shape x_shape = x.shape();
  return record(out, "linear", {x, weight, bias},
                [x_rows, wd, x_shape, out_features](const Tensor& g, const GradNeeds& needs) {
                  const Tensor g_rows = g.reshape({-1, out_features});  // (rows, out)
                  Tensor gx, gw, gb;
                  if (needs[0]) gx = matmul_forward(g_rows, wd).reshape(x_shape);  // (rows, out) @ (out, in)
                  if (needs[1]) gw = matmul_forward(g_rows.t(), x_rows);           // (out, rows) @ (rows, in)
                  if (needs[2]) gb = sum(g_rows, {0});
                  return grads(gx, gw, gb);
                });
}

}  // namespace cohort
