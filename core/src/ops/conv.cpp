// conv2d and its gradient. On the CPU, f32 runs on oneDNN's convolution primitives when cohort is
// built with oneDNN; f64 (and f32 without oneDNN) on im2col + gemm; bf16 and f16 are converted to
// f32 and the result rounded back. On a CUDA device every floating dtype runs on cuDNN as it is
// (16-bit ones with f32 accumulation; in f32 where cuDNN has no algorithm for them), the bias added
// by an elementwise kernel. Under an AutocastGuard (amp.h) CUDA inputs are cast to the autocast
// dtype first.
#include <type_traits>

#include "../amp/autocast-impl.h"
#include "../cuda/dnn-ops-impl.h"
#include "../cuda/elementwise-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/ops/reduction.h"
#include "conv-impl.h"

namespace cohort {

namespace {

using detail::ConvGeometry;

#if COHORT_WITH_DNNL
// Zero-sized problems always take the fallback, which handles them without special cases.
bool use_dnnl(const ConvGeometry& g) { return g.n > 0 && g.c_in > 0 && g.c_out > 0; }
#endif

template <class T>
void forward(const ConvGeometry& g, const T* x, const T* w, const T* b, T* y) {
#if COHORT_WITH_DNNL
  if constexpr (std::is_same_v<T, float>) {
    if (use_dnnl(g)) return detail::conv_forward_dnnl(g, x, w, b, y);
  }
#endif
  detail::conv_forward_fallback<T>(g, x, w, b, y);
}

template <class T>
void backward_data(const ConvGeometry& g, const T* dy, const T* w, T* dx) {
#if COHORT_WITH_DNNL
  if constexpr (std::is_same_v<T, float>) {
    if (use_dnnl(g)) return detail::conv_backward_data_dnnl(g, dy, w, dx);
  }
#endif
  detail::conv_backward_data_fallback<T>(g, dy, w, dx);
}

template <class T>
void backward_weights(const ConvGeometry& g, const T* x, const T* dy, T* dw, T* db) {
#if COHORT_WITH_DNNL
  if constexpr (std::is_same_v<T, float>) {
    if (use_dnnl(g)) return detail::conv_backward_weights_dnnl(g, x, dy, dw, db);
  }
#endif
  detail::conv_backward_weights_fallback<T>(g, x, dy, dw, db);
}

// Runs f(T{}) for f32 and f64, the dtypes the kernels take.
template <class F>
void dispatch_kernel_dtype(DType dt, const F& f) {
  if (dt == DType::f32) return f(float{});
  if (dt == DType::f64) return f(double{});
  COHORT_THROW(DTypeError, "conv2d: internal: ", dtype_name(dt), " must be converted to f32 first");
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.template data_ptr<T>() : nullptr;
}

// Validates shapes and options (messages name both shapes) and returns the geometry.
ConvGeometry conv_geometry(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dOptions& o) {
  COHORT_CHECK(x.dim() == 4, ShapeError, "conv2d: expected input of shape (N, C_in, H, W), got shape ", x.shape_str());
  COHORT_CHECK(weight.dim() == 4, ShapeError,
               "conv2d: expected weight of shape (C_out, C_in/groups, kH, kW), got shape ", weight.shape_str());
  COHORT_CHECK(o.stride >= 1 && o.dilation >= 1 && o.padding >= 0 && o.groups >= 1, ValueError,
               "conv2d: expected stride >= 1, padding >= 0, dilation >= 1 and groups >= 1, got stride ", o.stride,
               ", padding ", o.padding, ", dilation ", o.dilation, ", groups ", o.groups);
  ConvGeometry g;
  g.n = x.size(0), g.c_in = x.size(1), g.h = x.size(2), g.w = x.size(3);
  g.c_out = weight.size(0), g.kh = weight.size(2), g.kw = weight.size(3);
  g.stride = o.stride, g.padding = o.padding, g.dilation = o.dilation, g.groups = o.groups;
  COHORT_CHECK(g.c_in % g.groups == 0 && g.c_out % g.groups == 0, ValueError, "conv2d: groups ", g.groups,
               " must divide both C_in ", g.c_in, " and C_out ", g.c_out, " (input shape ", x.shape_str(),
               ", weight shape ", weight.shape_str(), ")");
  COHORT_CHECK(weight.size(1) * g.groups == g.c_in, ShapeError, "conv2d: input of shape ", x.shape_str(), " has ",
               g.c_in, " channels but weight of shape ", weight.shape_str(), " with groups ", g.groups, " expects ",
               weight.size(1) * g.groups);
  COHORT_CHECK(!bias.defined() || bias.shape() == Shape{g.c_out}, ShapeError, "conv2d: expected bias of shape (",
               g.c_out, ") for weight of shape ", weight.shape_str(), ", got shape ", bias.shape_str());
  const int64_t span_h = g.dilation * (g.kh - 1) + 1, span_w = g.dilation * (g.kw - 1) + 1;
  const int64_t padded_h = g.h + 2 * g.padding, padded_w = g.w + 2 * g.padding;
  COHORT_CHECK(g.kh >= 1 && g.kw >= 1 && span_h <= padded_h && span_w <= padded_w, ShapeError, "conv2d: kernel ", g.kh,
               "x", g.kw, " (dilation ", g.dilation, ", spanning ", span_h, "x", span_w,
               ") does not fit in the padded input ", padded_h, "x", padded_w, " (input shape ", x.shape_str(),
               ", padding ", g.padding, ")");
  g.ho = (padded_h - span_h) / g.stride + 1;
  g.wo = (padded_w - span_w) / g.stride + 1;
  return g;
}

// ---- CUDA ----

// Runs a cuDNN entry point (conv_forward, ...) on `out`; where cuDNN has no algorithm for a 16-bit
// dtype, runs it on f32 copies of the inputs and rounds the result into `out`.
template <class F>
void cudnn_or_f32(const Tensor& out, const Tensor& in0, const Tensor& in1, const F& f) {
  if (f(in0, in1, out)) return;
  const Tensor out32 = Tensor::empty(out.shape(), TensorOptions(DType::f32).with_device(out.device()));
  f(in0.to(DType::f32), in1.to(DType::f32), out32);  // in f32 cuDNN always has one (or throws)
  detail::cuda::copy(out, out32);
}

bool empty_problem(const ConvGeometry& g) { return g.n == 0 || g.c_in == 0 || g.c_out == 0; }

Tensor conv2d_cuda(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeometry& g) {
  namespace dc = detail::cuda;
  const Tensor xd = x.detach().contiguous(), wd = weight.detach().contiguous();
  const TensorOptions opts = TensorOptions(x.dtype()).with_device(x.device());
  Tensor y = Tensor::empty({g.n, g.c_out, g.ho, g.wo}, opts);
  if (empty_problem(g)) {
    y.zero_();
  } else {
    cudnn_or_f32(y, xd, wd, [&g](const Tensor& a, const Tensor& b, const Tensor& out) {
      return dc::conv_forward(g, a, b, out);
    });
  }
  if (bias.defined() && y.numel() > 0) {  // y += bias, per channel
    dc::binary(y, y, bias.detach().reshape({1, g.c_out, 1, 1}).expand(y.shape()), dc::BinaryOp::add);
  }
  return record(y, "conv2d", {x, weight, bias}, [g, xd, wd, opts](const Tensor& gy_in, const GradNeeds& needs) {
    const Tensor gy = gy_in.to(opts.dtype).contiguous();  // (N, C_out, Ho, Wo)
    Tensor gx, gw, gb;
    if (needs[0]) {
      gx = Tensor::empty(xd.shape(), opts);
      if (empty_problem(g)) {
        gx.zero_();
      } else {
        cudnn_or_f32(gx, gy, wd, [&g](const Tensor& dy, const Tensor& w, const Tensor& out) {
          return dc::conv_backward_data(g, dy, w, out);
        });
      }
    }
    if (needs[1]) {
      gw = Tensor::empty(wd.shape(), opts);
      if (empty_problem(g)) {
        gw.zero_();
      } else {
        cudnn_or_f32(gw, xd, gy, [&g](const Tensor& in, const Tensor& dy, const Tensor& out) {
          return dc::conv_backward_weights(g, in, dy, out);
        });
      }
    }
    if (needs[2]) gb = sum(gy, {0, 2, 3});
    return grads(gx, gw, gb);
  });
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dOptions options) {
  COHORT_CHECK(x.defined() && weight.defined(), ValueError, "conv2d: the input or the weight is undefined");
  for (const Tensor& t : {weight, bias}) {
    COHORT_CHECK(!t.defined() || t.device() == x.device(), DeviceError, "conv2d: input is on ", x.device().str(),
                 " but weight or bias on ", t.device().str(), "; move them with .to(", x.device().str(), ")");
  }
  if (const auto adt = detail::autocast_dtype_for({x, weight, bias})) {
    return conv2d(detail::autocast_cast(x, *adt), detail::autocast_cast(weight, *adt), detail::autocast_cast(bias, *adt),
                  options);
  }
  const ConvGeometry g = conv_geometry(x, weight, bias, options);
  const DType dt = x.dtype();
  for (const Tensor& t : {weight, bias}) {
    COHORT_CHECK(!t.defined() || t.dtype() == dt, DTypeError, "conv2d: input has dtype ", dtype_name(dt),
                 " but weight or bias has ", dtype_name(t.dtype()), "; convert with .to() so they match");
  }
  dispatch_floating(dt, "conv2d", [](auto) {});
  if (x.is_cuda()) return conv2d_cuda(x, weight, bias, g);
  if (dt == DType::bf16 || dt == DType::f16) {
    const Tensor b32 = bias.defined() ? bias.to(DType::f32) : bias;
    return conv2d(x.to(DType::f32), weight.to(DType::f32), b32, options).to(dt);
  }

  const Tensor xd = x.detach().contiguous(), wd = weight.detach().contiguous();
  const Tensor bd = bias.defined() ? bias.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty({g.n, g.c_out, g.ho, g.wo}, TensorOptions(dt).with_device(x.device()));
  dispatch_kernel_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    forward<T>(g, xd.data_ptr<T>(), wd.data_ptr<T>(), ptr_or_null<T>(bd), y.data_ptr<T>());
  });
  return record(y, "conv2d", {x, weight, bias}, [g, xd, wd](const Tensor& gy_in, const GradNeeds& needs) {
    const Tensor gy = gy_in.contiguous();  // (N, C_out, Ho, Wo)
    Tensor gx, gw, gb;
    const TensorOptions opts = TensorOptions(xd.dtype()).with_device(xd.device());
    if (needs[0]) gx = Tensor::empty(xd.shape(), opts);
    if (needs[1] || needs[2]) gw = Tensor::empty(wd.shape(), opts);
    if (needs[2]) gb = Tensor::empty({g.c_out}, opts);
    dispatch_kernel_dtype(xd.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if (gx.defined()) backward_data<T>(g, gy.data_ptr<T>(), wd.data_ptr<T>(), gx.data_ptr<T>());
      if (gw.defined()) {
        backward_weights<T>(g, xd.data_ptr<T>(), gy.data_ptr<T>(), gw.data_ptr<T>(), ptr_or_null<T>(gb));
      }
    });
    return grads(gx, needs[1] ? gw : Tensor(), gb);
  });
}

}  // namespace cohort
