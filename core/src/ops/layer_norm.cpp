// layer_norm over the trailing dims, with gradients for x, weight and bias.
//
// x is viewed as R rows of M = numel(normalized_shape) values. Each row is normalised with its own
// mean and biased variance (computed in float, or double for f64); the mean and 1/std of every
// row are kept for the backward. A CUDA tensor runs the same computation in cuda/layer_norm.cu.
#include <algorithm>
#include <cmath>
#include <memory>
#include <type_traits>
#include <vector>

#include "../cuda/reduce-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/parallel_for.h"
#include "vec-math-impl.h"

namespace cohort {

namespace {

DType acc_dtype(DType t) { return t == DType::f64 ? DType::f64 : DType::f32; }

// The affine parameters in the accumulation dtype (so bf16 activations can use f32 parameters
// without rounding them), or undefined.
Tensor param(const Tensor& p, const Shape& normalized_shape, DType acc, const Device& device, const char* what) {
  if (!p.defined()) return Tensor();
  COHORT_CHECK(is_floating(p.dtype()), DTypeError, "layer_norm: ", what, " must be floating, got ",
               dtype_name(p.dtype()));
  COHORT_CHECK(p.device() == device, DeviceError, "layer_norm: the input is on ", device.str(), " but the ", what,
               " is on ", p.device().str(), "; move the ", what, " with .to(", device.str(), ")");
  COHORT_CHECK(p.shape() == normalized_shape, ShapeError, "layer_norm: ", what, " of shape ", p.shape_str(),
               " does not match normalized_shape ", shape_str(normalized_shape));
  return p.detach().to(acc).contiguous();
}

// Rows are grouped into blocks whose size depends only on R (never on the thread count), so the
// weight and bias gradients, summed per block and then across blocks in order, are the same bits
// on any number of threads. At most kMaxBlocks blocks bound the partial sums' memory.
constexpr int64_t kMinRowsPerBlock = 16;
constexpr int64_t kMaxBlocks = 256;

int64_t rows_per_block(int64_t R) { return std::max(kMinRowsPerBlock, (R + kMaxBlocks - 1) / kMaxBlocks); }

// Backward. x: (R, M) contiguous of dtype T, stats: (R, 2) [mean, rstd] in A, g: like x.
//   xhat = (x - mean) * rstd,  gxhat = g * w
//   gx = rstd * (gxhat - mean(gxhat) - xhat * mean(gxhat * xhat))
//   gw = sum over rows of g * xhat,  gb = sum over rows of g
template <class T>
std::vector<Tensor> layer_norm_backward(const Tensor& x, const Tensor& stats, const Tensor& w, const Tensor& g_in,
                                        int64_t R, int64_t M, const GradNeeds& needs) {
  using A = acc_t<T>;
  const bool need_x = needs[0], need_w = needs[1], need_b = needs[2];
  const Tensor g = g_in.to(x.dtype()).contiguous();
  const T* xp = x.data_ptr<T>();
  const T* gp = g.data_ptr<T>();
  const A* st = stats.data_ptr<A>();
  const A* wp = w.data_ptr<A>();  // ones when layer_norm had no weight
  Tensor gx = need_x ? Tensor::empty(x.shape(), x.dtype()) : Tensor();
  T* gxp = need_x ? gx.data_ptr<T>() : nullptr;
  const int64_t block = rows_per_block(R), nblocks = (R + block - 1) / block;
  const bool need_params = need_w || need_b;
  std::vector<A> part_w(need_params ? nblocks * M : 0), part_b(need_params ? nblocks * M : 0);
  parallel_for(0, nblocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t blk = b; blk < e; ++blk) {
      A* pw = need_params ? part_w.data() + blk * M : nullptr;
      A* pb = need_params ? part_b.data() + blk * M : nullptr;
      for (int64_t r = blk * block; r < std::min(R, (blk + 1) * block); ++r) {
        const T* xr = xp + r * M;
        const T* gr = gp + r * M;
        const A mu = st[2 * r], rstd = st[2 * r + 1];
        if (need_params) {
          for (int64_t j = 0; j < M; ++j) {
            const A gj = static_cast<A>(gr[j]);
            pw[j] += gj * (static_cast<A>(xr[j]) - mu) * rstd;
            pb[j] += gj;
          }
        }
        if (!need_x) continue;
        // mean(gxhat) and mean(gxhat * xhat)
        const A m1 =
            detail::lane_sum<A>(M, [gr, wp](int64_t j) { return static_cast<A>(gr[j]) * wp[j]; }) / static_cast<A>(M);
        const A m2 = detail::lane_sum<A>(M,
                                         [gr, wp, xr, mu, rstd](int64_t j) {
                                           return static_cast<A>(gr[j]) * wp[j] * (static_cast<A>(xr[j]) - mu) * rstd;
                                         }) /
                     static_cast<A>(M);
        T* gxr = gxp + r * M;
        for (int64_t j = 0; j < M; ++j) {
          const A gh = static_cast<A>(gr[j]) * wp[j];
          gxr[j] = T(rstd * (gh - m1 - (static_cast<A>(xr[j]) - mu) * rstd * m2));
        }
      }
    }
  });
  Tensor gw, gb;
  if (need_params) {
    gw = Tensor::empty({M}, dtype_of<A>());
    gb = Tensor::empty({M}, dtype_of<A>());
    A* gwp = gw.data_ptr<A>();
    A* gbp = gb.data_ptr<A>();
    parallel_for(0, M, 1024, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) {
        A sw = 0, sb = 0;
        for (int64_t blk = 0; blk < nblocks; ++blk) {
          sw += part_w[blk * M + j];
          sb += part_b[blk * M + j];
        }
        gwp[j] = sw;
        gbp[j] = sb;
      }
    });
  }
  return grads(gx, gw, gb);
}

// The CPU forward: out and stats from x (R, M) and the parameters in the accumulation dtype.
void layer_norm_cpu(const Tensor& out, const Tensor& stats, const Tensor& x, const Tensor& w_or_one,
                    const Tensor& b_or_zero, int64_t R, int64_t M, double eps) {
  dispatch_floating(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    const T* xp = x.data_ptr<T>();
    T* op = out.data_ptr<T>();
    A* st = stats.data_ptr<A>();
    const A* wp = w_or_one.data_ptr<A>();
    const A* bp = b_or_zero.data_ptr<A>();
    // Two passes per row (mean, then the mean of squared deviations): stable where
    // E[x^2] - E[x]^2 would cancel for rows with a large mean.
    parallel_for(0, R, std::max<int64_t>(1, 16384 / std::max<int64_t>(M, 1)), [&](int64_t rb, int64_t re) {
      for (int64_t r = rb; r < re; ++r) {
        const T* xr = xp + r * M;
        const A mu = detail::lane_sum<A>(M, [xr](int64_t j) { return static_cast<A>(xr[j]); }) / static_cast<A>(M);
        const A v = detail::lane_sum<A>(M, [xr, mu](int64_t j) {
          const A d = static_cast<A>(xr[j]) - mu;
          return d * d;
        });
        const A rstd = A(1) / std::sqrt(v / static_cast<A>(M) + static_cast<A>(eps));
        st[2 * r] = mu;
        st[2 * r + 1] = rstd;
        T* yr = op + r * M;
        for (int64_t j = 0; j < M; ++j) yr[j] = T((static_cast<A>(xr[j]) - mu) * rstd * wp[j] + bp[j]);
      }
    });
  });
}

// The backward of a CUDA layer_norm: {gx, gw, gb} as layer_norm_backward gives them (gw and gb
// (M) in the accumulation dtype), each undefined unless needed.
std::vector<Tensor> layer_norm_backward_cuda(const Tensor& x, const Tensor& stats, const Tensor& w, const Tensor& g_in,
                                             int64_t R, int64_t M, const GradNeeds& needs) {
  const Tensor g = g_in.to(x.dtype()).contiguous();
  const TensorOptions acc_options = TensorOptions(stats.dtype()).with_device(x.device());
  Tensor gx = needs[0] ? Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device())) : Tensor();
  Tensor gw = needs[1] ? Tensor::empty({M}, acc_options) : Tensor();
  Tensor gb = needs[2] ? Tensor::empty({M}, acc_options) : Tensor();
  if (R == 0) {  // no rows: the parameter gradients are empty sums
    if (gw.defined()) gw.zero_();
    if (gb.defined()) gb.zero_();
  }
  detail::cuda::layer_norm_backward(gx, gw, gb, x, stats, w, g, R, M);
  return grads(gx, gw, gb);
}

}  // namespace

Tensor layer_norm(const Tensor& x_in, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  COHORT_CHECK(x_in.defined(), ValueError, "layer_norm: the input tensor is undefined");
  const int64_t k = static_cast<int64_t>(normalized_shape.size());
  COHORT_CHECK(k > 0, ShapeError, "layer_norm: normalized_shape must name at least one dim, got ()");
  const Shape& xs = x_in.shape();
  COHORT_CHECK(x_in.dim() >= k && Shape(xs.end() - k, xs.end()) == normalized_shape, ShapeError,
               "layer_norm: normalized_shape ", shape_str(normalized_shape), " does not match the last ", k,
               " dims of input shape ", x_in.shape_str());
  const DType acc = acc_dtype(x_in.dtype());
  const Tensor w = param(weight, normalized_shape, acc, x_in.device(), "weight");
  const Tensor b = param(bias, normalized_shape, acc, x_in.device(), "bias");
  const Tensor x = x_in.detach().contiguous();
  const int64_t M = numel_of(normalized_shape), R = M > 0 ? x.numel() / M : 0;
  const TensorOptions acc_options = TensorOptions(acc).with_device(x.device());
  Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  Tensor stats = Tensor::empty({R, 2}, acc_options);  // per row: mean, 1/sqrt(var + eps)
  // Missing parameters become ones and zeros, so the row loop has no branches.
  const Tensor w_or_one = w.defined() ? w : ones({M}, acc_options);
  const Tensor b_or_zero = b.defined() ? b : zeros({M}, acc_options);
  if (x.device().is_cuda()) {
    dispatch_floating(x.dtype(), "layer_norm", [](auto) {});  // the CPU's dtype check
    detail::cuda::layer_norm(out, stats, x, w_or_one, b_or_zero, R, M, eps);
  } else {
    layer_norm_cpu(out, stats, x, w_or_one, b_or_zero, R, M, eps);
  }
  const DType wdt = weight.defined() ? weight.dtype() : acc, bdt = bias.defined() ? bias.dtype() : acc;
  return record(out, "layer_norm", {x_in, weight, bias},
                [x, stats, w_or_one, R, M, normalized_shape, wdt, bdt](const Tensor& g, const GradNeeds& needs) {
                  std::vector<Tensor> r = x.device().is_cuda()
                                              ? layer_norm_backward_cuda(x, stats, w_or_one, g, R, M, needs)
                                              : dispatch_floating(x.dtype(), "layer_norm", [&](auto tag) {
                                                  return layer_norm_backward<decltype(tag)>(x, stats, w_or_one, g, R,
                                                                                            M, needs);
                                                });
                  return grads(r[0], needs[1] ? r[1].reshape(normalized_shape).to(wdt) : Tensor(),
                               needs[2] ? r[2].reshape(normalized_shape).to(bdt) : Tensor());
                });
}

}  // namespace cohort
