// The update rules, as fused loops over a parameter's memory. They follow PyTorch's torch.optim
// formulas exactly (tests compare one step of each against PyTorch). Parameters on a GPU take the
// same formulas in cuda/optim.cu, all of a group's parameters in a few launches.
#include <cmath>
#include <vector>

#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/optim/optimizer.h"
#include "cohort/core/parallel_for.h"
#include "cuda/optim-ops-impl.h"

namespace cohort {

namespace {
constexpr int64_t kGrain = 16384;

Tensor& buffer(StateDict& state, const char* name, const Tensor& like, bool* fresh) {
  auto it = state.find(name);
  *fresh = it == state.end();
  if (*fresh) it = state.emplace(name, zeros_like(like)).first;
  return it->second;
}

// buffer() for a parameter on a GPU: a buffer left on another device (state made before the
// model moved) follows the parameter there.
Tensor& device_buffer(StateDict& state, const char* name, const Tensor& like, bool* fresh) {
  Tensor& b = buffer(state, name, like, fresh);
  if (b.device() != like.device()) b = b.to(like.device());
  return b;
}

// Adam's per-parameter update count (a CPU i64 scalar, as torch keeps it), advanced by one.
double next_step(StateDict& state) {
  auto count = state.find("step");
  if (count == state.end()) count = state.emplace("step", scalar_tensor(0.0, DType::i64)).first;
  const int64_t steps = count->second.item<int64_t>() + 1;
  count->second.fill_(static_cast<double>(steps));
  return static_cast<double>(steps);
}
}  // namespace

SGD::SGD(NamedTensors params, SGDOptions opts) : Optimizer(std::move(params), opts.lr, opts.weight_decay), options(opts) {
  COHORT_CHECK(opts.momentum >= 0, ValueError, "SGD: momentum must be >= 0, got ", opts.momentum);
  COHORT_CHECK(!opts.nesterov || (opts.momentum > 0 && opts.dampening == 0), ValueError,
               "SGD: nesterov needs momentum > 0 and dampening 0");
}

// g = grad + wd p; buf = momentum buf + (1 - dampening) g (buf = g on the first step);
// g = nesterov ? g + momentum buf : buf; p -= lr g.
void SGD::update(const std::string&, Tensor& param, const Tensor& grad, const ParamGroup& group, StateDict& state) {
  const double lr = group.lr, wd = group.weight_decay, mom = options.momentum, damp = options.dampening;
  const bool nesterov = options.nesterov;
  dispatch_floating(param.dtype(), "SGD", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    T* p = param.data_ptr<T>();
    const T* g = grad.data_ptr<T>();
    T* buf = nullptr;
    bool fresh = false;
    if (mom != 0) buf = buffer(state, "momentum_buffer", param, &fresh).template data_ptr<T>();
    // The scalars as locals of the arithmetic type, and one loop per case: with the options read
    // through the lambda's captures inside the loop, every store could alias them, and the
    // loop ran scalar at a third of memory bandwidth.
    const A a_lr = A(lr), a_wd = A(wd), a_mom = A(mom), a_damp = A(1 - damp);
    parallel_for(0, param.numel(), kGrain, [=](int64_t b, int64_t e) {
      T* __restrict pp = p;
      const T* __restrict gg = g;
      T* __restrict mm = buf;
      if (mm == nullptr) {
        for (int64_t i = b; i < e; ++i) pp[i] = T(A(pp[i]) - a_lr * (A(gg[i]) + a_wd * A(pp[i])));
      } else if (fresh) {  // buf = d on the first step
        for (int64_t i = b; i < e; ++i) {
          const A d = A(gg[i]) + a_wd * A(pp[i]);
          mm[i] = T(d);
          pp[i] = T(A(pp[i]) - a_lr * (nesterov ? d + a_mom * d : d));
        }
      } else if (nesterov) {
        for (int64_t i = b; i < e; ++i) {
          const A d = A(gg[i]) + a_wd * A(pp[i]);
          const A m = a_mom * A(mm[i]) + a_damp * d;
          mm[i] = T(m);
          pp[i] = T(A(pp[i]) - a_lr * (d + a_mom * m));
        }
      } else {
        for (int64_t i = b; i < e; ++i) {
          const A d = A(gg[i]) + a_wd * A(pp[i]);
          const A m = a_mom * A(mm[i]) + a_damp * d;
          mm[i] = T(m);
          pp[i] = T(A(pp[i]) - a_lr * m);
        }
      }
    });
  });
}

void SGD::update_cuda(const ParamGroup& group, const std::vector<CudaParam>& params) {
  std::vector<detail::cuda::SgdTensors> list;
  list.reserve(params.size());
  for (const CudaParam& p : params) {
    detail::cuda::SgdTensors t;
    t.param = p.param;
    t.grad = p.grad;
    if (options.momentum != 0) t.momentum_buffer = device_buffer(*p.state, "momentum_buffer", p.param, &t.fresh);
    list.push_back(std::move(t));
  }
  detail::cuda::sgd_step(list, group.lr, group.weight_decay, options.momentum, options.dampening, options.nesterov);
}

Adam::Adam(NamedTensors params, AdamOptions opts, bool decoupled)
    : Optimizer(std::move(params), opts.lr, opts.weight_decay), options(opts), decoupled_(decoupled) {
  COHORT_CHECK(opts.beta1 >= 0 && opts.beta1 < 1 && opts.beta2 >= 0 && opts.beta2 < 1, ValueError,
               "Adam: betas must be in [0, 1), got (", opts.beta1, ", ", opts.beta2, ")");
  COHORT_CHECK(opts.eps >= 0, ValueError, "Adam: eps must be >= 0, got ", opts.eps);
}

// m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), with weight decay either added to g
// (Adam) or applied as p *= 1 - lr wd first (AdamW).
// t is the parameter's own update count (state "step", as torch keeps it), not the optimizer's: a
// parameter that had no gradient in some steps was not updated then, and its bias correction must
// count only the updates it had.
void Adam::update(const std::string&, Tensor& param, const Tensor& grad, const ParamGroup& group, StateDict& state) {
  const double lr = group.lr, wd = group.weight_decay, b1 = options.beta1, b2 = options.beta2, eps = options.eps;
  const double t = next_step(state);
  const double step_size = lr / (1 - std::pow(b1, t));
  const double bc2_sqrt = std::sqrt(1 - std::pow(b2, t));
  const bool decoupled = decoupled_;
  bool fresh = false;
  Tensor& m_t = buffer(state, "exp_avg", param, &fresh);
  Tensor& v_t = buffer(state, "exp_avg_sq", param, &fresh);
  dispatch_floating(param.dtype(), decoupled ? "AdamW" : "Adam", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    T* p = param.data_ptr<T>();
    const T* g = grad.data_ptr<T>();
    T* m = m_t.data_ptr<T>();
    T* v = v_t.data_ptr<T>();
    // Scalars as locals and the weight-decay form chosen outside the loop, so that it vectorises
    // (see SGD::update).
    const A a_b1 = A(b1), a_1mb1 = A(1 - b1), a_b2 = A(b2), a_1mb2 = A(1 - b2), a_eps = A(eps);
    const A a_step = A(step_size), a_bc2 = A(bc2_sqrt), a_wd = A(wd), a_decay = A(1 - lr * wd);
    parallel_for(0, param.numel(), kGrain, [=](int64_t b, int64_t e) {
      T* __restrict pp = p;
      const T* __restrict gg = g;
      T* __restrict mm = m;
      T* __restrict vv = v;
      auto one = [&](int64_t i, A pi, A gi) {
        const A mi = a_b1 * A(mm[i]) + a_1mb1 * gi;
        const A vi = a_b2 * A(vv[i]) + a_1mb2 * gi * gi;
        mm[i] = T(mi);
        vv[i] = T(vi);
        pp[i] = T(pi - a_step * mi / (std::sqrt(vi) / a_bc2 + a_eps));
      };
      if (decoupled) {
        for (int64_t i = b; i < e; ++i) one(i, A(pp[i]) * a_decay, A(gg[i]));
      } else {
        for (int64_t i = b; i < e; ++i) one(i, A(pp[i]), A(gg[i]) + a_wd * A(pp[i]));
      }
    });
  });
}

void Adam::update_cuda(const ParamGroup& group, const std::vector<CudaParam>& params) {
  const double lr = group.lr, b1 = options.beta1, b2 = options.beta2;
  std::vector<detail::cuda::AdamTensors> list;
  list.reserve(params.size());
  for (const CudaParam& p : params) {
    const double t = next_step(*p.state);  // on the CPU: no wait for the device
    bool fresh = false;
    detail::cuda::AdamTensors a;
    a.param = p.param;
    a.grad = p.grad;
    a.exp_avg = device_buffer(*p.state, "exp_avg", p.param, &fresh);
    a.exp_avg_sq = device_buffer(*p.state, "exp_avg_sq", p.param, &fresh);
    a.step_size = lr / (1 - std::pow(b1, t));
    a.bias_correction2_sqrt = std::sqrt(1 - std::pow(b2, t));
    list.push_back(std::move(a));
  }
  detail::cuda::adam_step(list, lr, b1, b2, options.eps, group.weight_decay, decoupled_);
}

}  // namespace cohort
