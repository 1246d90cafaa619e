// cross_entropy: log_softmax over the class dim and the negative log-likelihood of the targets,
// fused into one gradient node.
//
// The forward keeps log p = log_softmax(logits) (N, C, d...) for the backward, whose gradient is
// the closed form (softmax - onehot(target)) * w, with w = g / count for the mean, g for the sum,
// g[n, d...] for no reduction, and 0 where the target is ignored. That is one pass over N*C
// values, where composing log_softmax, gather and mean would take several.
//
// On a CUDA device the same steps run in cuda/softmax.cu and cuda/reduce.cu (the per-target losses
// in double, their sum in double), and the gradient reads the upstream g on the device. The one
// synchronisation is the target check: the targets are copied to the host to be validated (and
// counted for the mean) before any kernel runs, so a bad target is the CPU's IndexError.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "../cuda/reduce-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/parallel_for.h"
#include "vec-math-impl.h"

namespace cohort {

namespace {

// The targets as i64 (N * inner values, row-major), validated against C. A CUDA target is copied to
// the host for this (which waits for the work queued before it).
std::vector<int64_t> checked_targets(const Tensor& target, int64_t C, int64_t ignore_index) {
  const Tensor t = target.detach().to(DType::i64).to(Device::cpu()).contiguous();
  const int64_t* p = t.data_ptr<int64_t>();
  std::vector<int64_t> out(p, p + t.numel());
  for (int64_t v : out) {
    COHORT_CHECK(v == ignore_index || (v >= 0 && v < C), IndexError, "cross_entropy: target ", v,
                 " is out of range for ", C, " classes (expected 0 <= target < ", C, ", or ignore_index ", ignore_index,
                 ")");
  }
  return out;
}

void check_shapes(const Tensor& logits, const Tensor& target) {
  COHORT_CHECK(logits.dim() >= 1, ShapeError, "cross_entropy: logits must be (N, C) or (N, C, d1, ...), got shape ",
               logits.shape_str());
  COHORT_CHECK(target.dtype() == DType::i64 || target.dtype() == DType::i32, DTypeError,
               "cross_entropy: target must hold class indices as i64 or i32, got ", dtype_name(target.dtype()),
               " (probability targets are not supported)");
  Shape expected = logits.shape();
  expected.erase(expected.begin() + (logits.dim() == 1 ? 0 : 1));
  COHORT_CHECK(target.shape() == expected, ShapeError, "cross_entropy: logits of shape ", logits.shape_str(),
               " need a target of shape ", shape_str(expected), ", got ", target.shape_str());
}

// d loss / d logits from the saved log p (N, C, inner) and targets.
Tensor cross_entropy_backward(const Tensor& g, const Tensor& logp, const std::vector<int64_t>& tgt, int64_t inner,
                              int64_t ignore, Reduction reduction, int64_t count) {
  const int64_t C = logp.size(1);
  const int64_t n_rows = logp.size(0), rows = n_rows * inner;
  // w[m]: the weight of target m's loss in the output (0 where ignored).
  std::vector<double> w(rows, 0.0);
  if (reduction == Reduction::none) {
    const Tensor gc = g.to(DType::f64).contiguous();
    const double* gp = gc.data_ptr<double>();
    for (int64_t m = 0; m < rows; ++m) w[m] = gp[m];
  } else {
    const double scale = g.item() / (reduction == Reduction::mean ? static_cast<double>(count) : 1.0);
    for (int64_t m = 0; m < rows; ++m) w[m] = scale;
  }
  for (int64_t m = 0; m < rows; ++m)
    if (tgt[m] == ignore) w[m] = 0.0;
  Tensor gx = Tensor::empty(logp.shape(), TensorOptions(logp.dtype()).with_device(logp.device()));
  dispatch_floating(logp.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    const T* lp = logp.data_ptr<T>();
    T* o = gx.data_ptr<T>();
    // Sample n is C x inner values: softmax * w everywhere (exp(log p) in a loop that
    // vectorises), then (softmax - 1) * w again at each target, computed before rounding.
    parallel_for(0, n_rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(C * inner, 1)), [&](int64_t b, int64_t e) {
      std::vector<A> wn(inner);
      for (int64_t n = b; n < e; ++n) {
        for (int64_t i = 0; i < inner; ++i) wn[i] = static_cast<A>(w[n * inner + i]);
        const T* ls = lp + n * C * inner;
        T* os = o + n * C * inner;
        if (inner == 1) {
          const A wv = wn[0];
          for (int64_t c = 0; c < C; ++c) os[c] = T(detail::vec_exp(static_cast<A>(ls[c])) * wv);
        } else {
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < inner; ++i)
              os[c * inner + i] = T(detail::vec_exp(static_cast<A>(ls[c * inner + i])) * wn[i]);
        }
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t t = tgt[n * inner + i];
          if (t == ignore) continue;
          const int64_t k = t * inner + i;
          os[k] = T((detail::vec_exp(static_cast<A>(ls[k])) - A(1)) * wn[i]);
        }
      }
    });
  });
  return gx;
}

// The CUDA forward from log p (N, C, inner) on the device, and its gradient node.
Tensor cross_entropy_cuda(const Tensor& logits, const Tensor& target, const Tensor& logp, int64_t inner,
                          int64_t ignore, Reduction reduction, int64_t count) {
  const int64_t N = logp.size(0), C = logp.size(1), M = N * inner;
  const Tensor tgt = target.detach().to(DType::i64).contiguous().reshape({M});
  const TensorOptions f64 = TensorOptions(DType::f64).with_device(logp.device());
  const Tensor loss = Tensor::empty({M}, f64);  // per target, in double like the CPU's
  detail::cuda::nll_loss(loss, logp, tgt, C, inner, ignore);
  Tensor out;
  if (reduction == Reduction::none) {
    out = loss.to(logp.dtype()).reshape(target.shape());
  } else {
    Tensor total = Tensor::empty({}, f64);
    detail::cuda::sum(total, loss, 1, M, 1, 1.0);
    if (reduction == Reduction::mean) total = total / static_cast<double>(count);  // 0/0 = NaN, as on the CPU
    out = total.to(logp.dtype());
  }
  const Shape logits_shape = logits.shape();
  return record(out, "cross_entropy", {logits, target},
                [logp, tgt, C, inner, ignore, reduction, count, logits_shape](const Tensor& g, const GradNeeds&) {
                  Tensor gx = Tensor::empty(logp.shape(), TensorOptions(logp.dtype()).with_device(logp.device()));
                  const double divisor = reduction == Reduction::mean ? static_cast<double>(count) : 1.0;
                  detail::cuda::cross_entropy_backward(gx, logp, tgt, g.detach().to(DType::f64).contiguous(), C, inner,
                                                       ignore, reduction == Reduction::none, divisor);
                  return grads(gx.reshape(logits_shape), Tensor());
                });
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, CrossEntropyOptions options) {
  COHORT_CHECK(logits.defined() && target.defined(), ValueError, "cross_entropy: logits or target is undefined");
  COHORT_CHECK(is_floating(logits.dtype()), DTypeError, "cross_entropy: logits must be floating, got ",
               dtype_name(logits.dtype()));
  check_shapes(logits, target);
  COHORT_CHECK(target.device() == logits.device(), DeviceError, "cross_entropy: the logits are on ",
               logits.device().str(), " but the target is on ", target.device().str(), "; move the target with .to(",
               logits.device().str(), ")");
  // (C) logits with a 0-dim target is one sample.
  const bool unbatched = logits.dim() == 1;
  const Tensor x = unbatched ? logits.detach().unsqueeze(0) : logits.detach();
  const int64_t N = x.size(0), C = x.size(1);
  int64_t inner = 1;  // d1 * d2 * ...
  for (int64_t d = 2; d < x.dim(); ++d) inner *= x.size(d);
  const int64_t ignore = options.ignore_index;
  const auto tgt = std::make_shared<const std::vector<int64_t>>(checked_targets(target, C, ignore));
  const Tensor logp = log_softmax(x, 1);  // (N, C, d...), contiguous
  const Reduction reduction = options.reduction;
  if (x.device().is_cuda()) {
    int64_t count = 0;
    for (int64_t t : *tgt) count += t != ignore;
    return cross_entropy_cuda(logits, target, logp, inner, ignore, reduction, count);
  }

  // Per-target losses in double, summed in order afterwards so the result does not depend on the
  // thread count.
  const int64_t M = N * inner;
  std::vector<double> loss(M);
  dispatch_floating(x.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* lp = logp.data_ptr<T>();  // (N, C, inner)
    parallel_for(0, M, 16384, [&](int64_t b, int64_t e) {
      for (int64_t m = b; m < e; ++m) {
        const int64_t t = (*tgt)[m], n = m / inner, i = m % inner;
        loss[m] = t == ignore ? 0.0 : -static_cast<double>(static_cast<acc_t<T>>(lp[(n * C + t) * inner + i]));
      }
    });
  });
  int64_t count = 0;
  for (int64_t t : *tgt) count += t != ignore;

  Tensor out;
  if (reduction == Reduction::none) {
    out = Tensor::empty(target.shape(), TensorOptions(x.dtype()).with_device(x.device()));
    dispatch_floating(x.dtype(), "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      T* o = out.data_ptr<T>();
      for (int64_t m = 0; m < M; ++m) o[m] = T(static_cast<acc_t<T>>(loss[m]));
    });
  } else {
    double total = 0;
    for (double v : loss) total += v;
    if (reduction == Reduction::mean) total /= static_cast<double>(count);  // all ignored: 0/0 = NaN, like PyTorch
    out = Tensor::empty({}, TensorOptions(x.dtype()).with_device(x.device()));
    out.fill_(total);
  }

  const Shape logits_shape = logits.shape();
  return record(out, "cross_entropy", {logits, target},
                [logp, tgt, inner, ignore, reduction, count, logits_shape](const Tensor& g, const GradNeeds&) {
                  const Tensor gx = cross_entropy_backward(g, logp, *tgt, inner, ignore, reduction, count);
                  return grads(gx.reshape(logits_shape), Tensor());
                });
}

}  // namespace cohort
