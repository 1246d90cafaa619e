// max_pool2d and avg_pool2d with their gradients. On the CPU, max pooling runs on direct loops;
// average pooling on oneDNN's pooling primitives for f32 when cohort is built with oneDNN, else on
// direct loops; bf16 and f16 are converted to f32 and the result rounded back. On a CUDA device
// both run on cohort's kernels (cuda/pool.cu) in every floating dtype, with the CPU loops' results.
#include <type_traits>

#include "../cuda/dnn-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/nn.h"
#include "pool-impl.h"

namespace cohort {

namespace {

using detail::PoolGeometry;

PoolGeometry pool_geometry(const Tensor& x, const Pool2dOptions& o, const char* op) {
  COHORT_CHECK(x.defined(), ValueError, op, ": the input is undefined");
  COHORT_CHECK(x.dim() == 4, ShapeError, op, ": expected input of shape (N, C, H, W), got shape ", x.shape_str());
  COHORT_CHECK(o.kernel_size >= 1 && o.stride >= 0 && o.padding >= 0, ValueError, op,
               ": expected kernel_size >= 1, stride >= 0 (0: kernel_size) and padding >= 0, got kernel_size ",
               o.kernel_size, ", stride ", o.stride, ", padding ", o.padding);
  COHORT_CHECK(o.padding <= o.kernel_size / 2, ValueError, op, ": padding ", o.padding,
               " must be at most half of kernel_size ", o.kernel_size);
  PoolGeometry g;
  g.n = x.size(0), g.c = x.size(1), g.h = x.size(2), g.w = x.size(3);
  g.kernel = o.kernel_size;
  g.stride = o.stride == 0 ? o.kernel_size : o.stride;
  g.padding = o.padding;
  g.count_include_pad = o.count_include_pad;
  const int64_t padded_h = g.h + 2 * g.padding, padded_w = g.w + 2 * g.padding;
  COHORT_CHECK(padded_h >= g.kernel && padded_w >= g.kernel, ShapeError, op, ": kernel ", g.kernel, "x", g.kernel,
               " does not fit in the padded input ", padded_h, "x", padded_w, " (input shape ", x.shape_str(),
               ", padding ", g.padding, ")");
  g.ho = (padded_h - g.kernel) / g.stride + 1;
  g.wo = (padded_w - g.kernel) / g.stride + 1;
  return g;
}

bool is_half(DType dt) { return dt == DType::bf16 || dt == DType::f16; }

bool use_dnnl(const Tensor& x, const PoolGeometry& g) {
  return COHORT_WITH_DNNL && !x.is_cuda() && x.dtype() == DType::f32 && g.n * g.c > 0;
}

// bf16 and f16 run in f32 on the CPU; the CUDA kernels take them as they are.
bool converts_to_f32(const Tensor& x) { return is_half(x.dtype()) && !x.is_cuda(); }

// Runs f(T{}) for f32 and f64, the dtypes the kernels take.
template <class F>
void dispatch_kernel_dtype(DType dt, const char* op, const F& f) {
  if (dt == DType::f32) return f(float{});
  if (dt == DType::f64) return f(double{});
  COHORT_THROW(DTypeError, op, ": internal: ", dtype_name(dt), " must be converted to f32 first");
}

}  // namespace

Tensor max_pool2d(const Tensor& x, Pool2dOptions options) {
  const PoolGeometry g = pool_geometry(x, options, "max_pool2d");
  const DType dt = x.dtype();
  dispatch_floating(dt, "max_pool2d", [](auto) {});
  if (converts_to_f32(x)) return max_pool2d(x.to(DType::f32), options).to(dt);

  // Always on cohort's loops: for plain NCHW oneDNN only has a reference kernel, measured at
  // ~50 ms for (64, 32, 32, 32) against ~1.5 ms here.
  const Tensor xd = x.detach().contiguous();
  const TensorOptions opts = TensorOptions(dt).with_device(x.device());
  Tensor y = Tensor::empty({g.n, g.c, g.ho, g.wo}, opts);
  // Where each maximum came from.
  Tensor indices = Tensor::empty({g.n, g.c, g.ho, g.wo}, TensorOptions(DType::i64).with_device(x.device()));
  if (x.is_cuda()) {
    detail::cuda::max_pool_forward(g, xd, y, indices);
    return record(y, "max_pool2d", {x}, [g, opts, indices](const Tensor& gy_in, const GradNeeds&) {
      const Tensor gy = gy_in.to(opts.dtype).contiguous();
      Tensor gx = Tensor::empty({g.n, g.c, g.h, g.w}, opts);
      detail::cuda::max_pool_backward(g, gy, indices, gx);
      return grads(gx);
    });
  }
  dispatch_kernel_dtype(dt, "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    detail::max_pool_forward_fallback<T>(g, xd.data_ptr<T>(), y.data_ptr<T>(), indices.data_ptr<int64_t>());
  });
  return record(y, "max_pool2d", {x}, [g, opts, indices](const Tensor& gy_in, const GradNeeds&) {
    const Tensor gy = gy_in.contiguous();
    Tensor gx = Tensor::empty({g.n, g.c, g.h, g.w}, opts);
    dispatch_kernel_dtype(opts.dtype, "max_pool2d", [&](auto tag) {
      using T = decltype(tag);
      detail::max_pool_backward_fallback<T>(g, gy.data_ptr<T>(), indices.data_ptr<int64_t>(), gx.data_ptr<T>());
    });
    return grads(gx);
  });
}

Tensor avg_pool2d(const Tensor& x, Pool2dOptions options) {
  const PoolGeometry g = pool_geometry(x, options, "avg_pool2d");
  const DType dt = x.dtype();
  dispatch_floating(dt, "avg_pool2d", [](auto) {});
  if (converts_to_f32(x)) return avg_pool2d(x.to(DType::f32), options).to(dt);

  const Tensor xd = x.detach().contiguous();
  const TensorOptions opts = TensorOptions(dt).with_device(x.device());
  Tensor y = Tensor::empty({g.n, g.c, g.ho, g.wo}, opts);
  if (x.is_cuda()) {
    detail::cuda::avg_pool_forward(g, xd, y);
    return record(y, "avg_pool2d", {x}, [g, opts](const Tensor& gy_in, const GradNeeds&) {
      const Tensor gy = gy_in.to(opts.dtype).contiguous();
      Tensor gx = Tensor::empty({g.n, g.c, g.h, g.w}, opts);
      detail::cuda::avg_pool_backward(g, gy, gx);
      return grads(gx);
    });
  }
  const bool on_dnnl = use_dnnl(x, g);
  dispatch_kernel_dtype(dt, "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
#if COHORT_WITH_DNNL
    if constexpr (std::is_same_v<T, float>) {
      if (on_dnnl) return detail::avg_pool_forward_dnnl(g, xd.data_ptr<float>(), y.data_ptr<float>());
    }
#endif
    detail::avg_pool_forward_fallback<T>(g, xd.data_ptr<T>(), y.data_ptr<T>());
  });
  return record(y, "avg_pool2d", {x}, [g, opts, on_dnnl](const Tensor& gy_in, const GradNeeds&) {
    const Tensor gy = gy_in.contiguous();
    Tensor gx = Tensor::empty({g.n, g.c, g.h, g.w}, opts);
    dispatch_kernel_dtype(opts.dtype, "avg_pool2d", [&](auto tag) {
      using T = decltype(tag);
#if COHORT_WITH_DNNL
      if constexpr (std::is_same_v<T, float>) {
        if (on_dnnl) return detail::avg_pool_backward_dnnl(g, gy.data_ptr<float>(), gx.data_ptr<float>());
      }
#endif
      detail::avg_pool_backward_fallback<T>(g, gy.data_ptr<T>(), gx.data_ptr<T>());
    });
    return grads(gx);
  });
}

}  // namespace cohort
