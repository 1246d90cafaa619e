// GradScaler (see grad_scaler.h): PyTorch's GradScaler, with the scale and its growth count kept on
// the host. torch keeps them on the device so that update() needs no read-back; here step() reads
// the overflow flags back anyway (it must know whether to step), so update() has them for free and
// the scale can be a plain float that scale() multiplies by. The arithmetic is torch's:
// inv_scale = float(1 / double(scale)), gradients multiplied by it in their computing type, the
// new scale rounded to float, and growth refused when it would overflow float.
#include "cohort/core/optim/grad_scaler.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "cohort/core/autograd.h"
#include "cohort/core/ops/factory.h"
#include "cuda/optim-ops-impl.h"

namespace cohort {

namespace {

// g *= inv_scale in g's computing type (g a contiguous CPU tensor); true when an element was inf
// or NaN before.
bool unscale_cpu(const Tensor& g, float inv_scale) {
  bool bad = false;
  dispatch_floating(g.dtype(), "GradScaler.unscale_", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    T* x = g.data_ptr<T>();
    const A s = A(inv_scale);
    const int64_t n = g.numel();
    for (int64_t i = 0; i < n; ++i) {
      const A v = A(x[i]);
      bad = bad || !std::isfinite(v);
      x[i] = T(v * s);
    }
  });
  g.storage()->bump_version();
  return bad;
}

}  // namespace

GradScaler::GradScaler(GradScalerOptions options) : options_(options), scale_(static_cast<float>(options.init_scale)) {
  COHORT_CHECK(std::isfinite(scale_) && scale_ > 0, ValueError,
               "GradScaler: init_scale must be a positive finite float, got ", options.init_scale);
  COHORT_CHECK(options.growth_factor > 1, ValueError, "GradScaler: growth_factor must be > 1, got ",
               options.growth_factor);
  COHORT_CHECK(options.backoff_factor > 0 && options.backoff_factor < 1, ValueError,
               "GradScaler: backoff_factor must be in (0, 1), got ", options.backoff_factor);
  COHORT_CHECK(options.growth_interval > 0, ValueError, "GradScaler: growth_interval must be > 0, got ",
               options.growth_interval);
}

Tensor GradScaler::scale(const Tensor& loss) const {
  if (!options_.enabled) return loss;
  return loss * static_cast<double>(scale_);
}

void GradScaler::unscale_(Optimizer& optimizer) {
  if (!options_.enabled) return;
  PerOptimizer& state = per_optimizer_[&optimizer];
  COHORT_CHECK(state.stage == Stage::ready, ValueError, "GradScaler.unscale_: ",
               state.stage == Stage::unscaled
                   ? "already called for this optimizer since the last update(); call it once per step, before "
                     "clipping"
                   : "called after step() for this optimizer; unscale_ comes before step(), and update() ends "
                     "the step");
  NoGradGuard no_grad;
  const float inv_scale = static_cast<float>(1.0 / static_cast<double>(scale_));
  // CPU gradients are unscaled here, CUDA ones listed per device and unscaled there.
  bool cpu_bad = false, any_cpu = false;
  std::vector<std::pair<Device, std::vector<Tensor>>> on_cuda;
  for (ParamGroup& group : optimizer.param_groups()) {
    for (auto& [name, p] : group.params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      if (!g.is_contiguous()) {  // in place on an expanded view would scale shared elements again
        g = g.contiguous();
        p.set_grad(g);
      }
      if (g.device().is_cpu()) {
        any_cpu = true;
        cpu_bad = unscale_cpu(g, inv_scale) || cpu_bad;
        continue;
      }
      auto it = std::find_if(on_cuda.begin(), on_cuda.end(), [&](const auto& d) { return d.first == g.device(); });
      if (it == on_cuda.end()) it = on_cuda.insert(on_cuda.end(), {g.device(), {}});
      it->second.push_back(g);
    }
  }
  state.found_inf.clear();
  if (any_cpu) state.found_inf.push_back(scalar_tensor(cpu_bad ? 1.0 : 0.0, DType::f32));
  for (const auto& [device, grads] : on_cuda) {
    Tensor flag = zeros({}, TensorOptions(DType::f32).with_device(device));
    detail::cuda::unscale_and_check_(grads, flag, inv_scale);
    state.found_inf.push_back(flag);
  }
  state.known = -1;
  state.stage = Stage::unscaled;
}

bool GradScaler::found_inf(PerOptimizer& state) {
  if (state.known < 0) {
    double total = 0;
    for (const Tensor& flag : state.found_inf) total += flag.item();  // waits for that device
    state.known = total > 0 ? 1 : 0;
  }
  return state.known == 1;
}

bool GradScaler::step(Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  PerOptimizer& state = per_optimizer_[&optimizer];
  COHORT_CHECK(state.stage != Stage::stepped, ValueError,
               "GradScaler.step: already called for this optimizer since the last update(); call update() after "
               "every step");
  if (state.stage == Stage::ready) unscale_(optimizer);
  const bool skip = found_inf(state);
  if (!skip) optimizer.step();
  state.stage = Stage::stepped;
  return !skip;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  bool recorded = false, overflow = false;
  for (auto& [optimizer, state] : per_optimizer_) {
    if (state.stage == Stage::ready) continue;
    recorded = true;
    overflow = found_inf(state) || overflow;
  }
  COHORT_CHECK(recorded, ValueError,
               "GradScaler.update: no inf/NaN check was recorded since the last update(); call "
               "unscale_(optimizer) or step(optimizer) before update()");
  if (overflow) {
    scale_ = static_cast<float>(static_cast<double>(scale_) * options_.backoff_factor);
    growth_tracker_ = 0;
  } else if (++growth_tracker_ == options_.growth_interval) {
    const float grown = static_cast<float>(static_cast<double>(scale_) * options_.growth_factor);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  }
  per_optimizer_.clear();
}

StateDict GradScaler::state_dict() const {
  StateDict out;
  out["scale"] = scalar_tensor(static_cast<double>(scale_), DType::f64);
  out["growth_tracker"] = scalar_tensor(static_cast<double>(growth_tracker_), DType::i64);
  return out;
}

void GradScaler::load_state_dict(const StateDict& state) {
  auto scale = state.find("scale");
  auto tracker = state.find("growth_tracker");
  COHORT_CHECK(scale != state.end() && tracker != state.end(), ValueError,
               "GradScaler.load_state_dict: expected the keys 'scale' and 'growth_tracker' (as state_dict() "
               "writes them), found ",
               state.size(), " keys without them; was this saved from a GradScaler?");
  const double s = scale->second.item();
  COHORT_CHECK(std::isfinite(s) && s > 0, ValueError,
               "GradScaler.load_state_dict: 'scale' must be positive and "
               "finite, got ",
               s);
  scale_ = static_cast<float>(s);
  growth_tracker_ = static_cast<int64_t>(tracker->second.item());
  per_optimizer_.clear();
}

}  // namespace cohort
