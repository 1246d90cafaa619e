// dropout: zeroes each element with probability p and scales the survivors by 1/(1-p).
//
// Element i of the (contiguous, row-major) input is kept when the uniform number from word i % 4
// of Philox counter first + i / 4 is >= p: the same counter-to-element mapping as rand() (see
// random_fill in tensor/factory.cpp), so the mask depends on the generator's seed and offset but
// not on the thread count. The mask is kept (one byte per element) for the backward: regenerating
// it would cost a second Philox pass, which is most of the forward's time. On CUDA the same Philox
// runs on the device (cuda/random.cu), so a CUDA program draws the CPU program's masks.
#include "../cuda/index-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/parallel_for.h"

namespace cohort {

namespace {

// out[i] = mask[i] ? g[i] * scale : 0 over contiguous tensors.
Tensor apply_mask(const Tensor& g, const Tensor& mask, double scale) {
  Tensor out = Tensor::empty(g.shape(), TensorOptions(g.dtype()).with_device(g.device()));
  if (out.is_cuda()) {
    detail::cuda::dropout_backward(out, g, mask, scale);
    return out;
  }
  dispatch_floating(g.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    const A s = static_cast<A>(scale);
    const T* gp = g.data_ptr<T>();
    const bool* mp = mask.data_ptr<bool>();
    T* o = out.data_ptr<T>();
    parallel_for(0, g.numel(), 32768, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = T(mp[i] ? static_cast<A>(gp[i]) * s : A(0));
    });
  });
  return out;
}

}  // namespace

Tensor dropout(const Tensor& x_in, double p, bool training, Generator* gen) {
  COHORT_CHECK(x_in.defined(), ValueError, "dropout: the input tensor is undefined");
  COHORT_CHECK(p >= 0.0 && p < 1.0, ValueError, "dropout: p must be in [0, 1), got ", p);
  COHORT_CHECK(is_floating(x_in.dtype()), DTypeError, "dropout: expected a floating dtype (f32, f64, bf16, f16), got ",
               dtype_name(x_in.dtype()));
  if (p == 0.0 || !training) return x_in;
  Generator& g = gen != nullptr ? *gen : default_generator();
  const Tensor x = x_in.detach().contiguous();
  const int64_t n = x.numel(), counters = (n + 3) / 4;
  const uint64_t seed = g.seed();
  const uint64_t first = g.advance(static_cast<uint64_t>(counters));
  const double scale = 1.0 / (1.0 - p);
  Tensor out = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  Tensor mask = Tensor::empty(x.shape(), TensorOptions(DType::boolean).with_device(x.device()));
  if (x.is_cuda()) {
    detail::cuda::dropout(out, mask, x, p, scale, seed, first);
  } else {
    dispatch_floating(x.dtype(), "dropout", [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      const A s = static_cast<A>(scale);
      const T* xp = x.data_ptr<T>();
      T* o = out.data_ptr<T>();
      bool* mp = mask.data_ptr<bool>();
      parallel_for(0, counters, 2048, [&](int64_t b, int64_t e) {
        for (int64_t c = b; c < e; ++c) {
          uint32_t r[4];
          detail::philox(seed, first + static_cast<uint64_t>(c), r);
          for (int64_t k = 0; k < 4 && 4 * c + k < n; ++k) {
            const int64_t i = 4 * c + k;
            mp[i] = detail::uniform_double(r[k]) >= p;
            o[i] = T(mp[i] ? static_cast<A>(xp[i]) * s : A(0));
          }
        }
      });
    });
  }
  return record(out, "dropout", {x_in}, [mask, scale](const Tensor& grad, const GradNeeds&) {
    return grads(apply_mask(grad.contiguous(), mask, scale));
  });
}

}  // namespace cohort
