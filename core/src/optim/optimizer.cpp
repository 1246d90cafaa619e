#include "cohort/core/optim/optimizer.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "cohort/core/autograd.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/profiler.h"
#include "cuda/optim-ops-impl.h"
#include "ops/vec-math-impl.h"

namespace cohort {

Optimizer::Optimizer(NamedTensors params, double lr, double weight_decay)
    : default_lr_(lr), default_weight_decay_(weight_decay) {
  COHORT_CHECK(lr >= 0, ValueError, "optimizer: learning rate must be >= 0, got ", lr);
  COHORT_CHECK(weight_decay >= 0, ValueError, "optimizer: weight_decay must be >= 0, got ", weight_decay);
  ParamGroup g;
  g.params = std::move(params);
  g.lr = NAN;
  g.weight_decay = NAN;
  add_param_group(std::move(g));
}

void Optimizer::add_param_group(ParamGroup group) {
  std::set<std::string> seen;
  for (const ParamGroup& g : groups_)
    for (const auto& [name, p] : g.params) seen.insert(name);
  for (const auto& [name, p] : group.params) {
    COHORT_CHECK(seen.insert(name).second, ValueError, "optimizer: parameter '", name,
                 "' appears in more than one place; every parameter must be in exactly one group");
    COHORT_CHECK(p.defined() && p.is_leaf() && is_floating(p.dtype()), ValueError, "optimizer: parameter '", name,
                 "' must be a floating leaf tensor");
  }
  if (std::isnan(group.lr)) group.lr = default_lr_;
  if (std::isnan(group.weight_decay)) group.weight_decay = default_weight_decay_;
  group.initial_lr = group.lr;
  groups_.push_back(std::move(group));
}

void Optimizer::zero_grad() {
  for (ParamGroup& g : groups_)
    for (auto& [name, p] : g.params) p.set_grad(Tensor());
}

void Optimizer::step() {
  NoGradGuard no_grad;
  ++step_count_;
  for (const ParamGroup& group : groups_) {
    // CPU parameters are updated one by one as they come; CUDA ones are gathered and updated
    // together (a few launches for the whole group).
    std::vector<CudaParam> on_cuda;
    for (const auto& [name, p] : group.params) {
      Tensor grad = p.grad();
      if (!grad.defined()) continue;
      COHORT_CHECK(p.is_contiguous(), ValueError, "optimizer: parameter '", name, "' is not contiguous");
      COHORT_CHECK(grad.device() == p.device(), DeviceError, "optimizer: parameter '", name, "' is on ",
                   p.device().str(), " but its gradient is on ", grad.device().str(),
                   "; gradients must be on their parameter's device");
      if (!grad.is_contiguous() || grad.dtype() != p.dtype()) grad = grad.to(p.dtype()).contiguous();
      if (p.device().is_cuda()) {
        on_cuda.push_back({name, p, grad, &state_[name]});
        continue;
      }
      Tensor param = p;
      update(name, param, grad, group, state_[name]);
    }
    if (!on_cuda.empty()) update_cuda(group, on_cuda);
  }
  detail::profile_mark("optimizer step");
}

void Optimizer::update_cuda(const ParamGroup&, const std::vector<CudaParam>& params) {
  COHORT_THROW(DeviceError, "optimizer: parameter '", params.front().name, "' is on ",
               params.front().param.device().str(),
               " but this optimizer has no GPU update; keep its parameters on the CPU or override update_cuda()");
}

StateDict Optimizer::state_dict() const {
  StateDict out;
  for (const auto& [param, buffers] : state_)
    for (const auto& [buffer, t] : buffers) out[param + "." + buffer] = t.to(Device::cpu());
  out["step"] = scalar_tensor(static_cast<double>(step_count_), DType::i64);
  for (size_t i = 0; i < groups_.size(); ++i)
    out["group." + std::to_string(i) + ".lr"] = scalar_tensor(groups_[i].lr, DType::f64);
  return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
  std::map<std::string, const Tensor*> params;
  for (const ParamGroup& g : groups_)
    for (const auto& [name, p] : g.params) params[name] = &p;
  std::map<std::string, StateDict> loaded;
  int64_t step = 0;
  std::vector<double> lrs(groups_.size(), NAN);
  for (const auto& [key, t] : state) {
    if (key == "step") {
      step = static_cast<int64_t>(t.item());
      continue;
    }
    if (key.rfind("group.", 0) == 0) {
      const size_t i = std::stoul(key.substr(6));
      COHORT_CHECK(i < groups_.size(), ValueError, "optimizer load_state_dict: state has '", key,
                   "' but this optimizer has ", groups_.size(), " parameter groups");
      lrs[i] = t.item();
      continue;
    }
    const size_t dot = key.rfind('.');
    const std::string param = dot == std::string::npos ? key : key.substr(0, dot);
    const std::string buffer = dot == std::string::npos ? "" : key.substr(dot + 1);
    auto it = params.find(param);
    COHORT_CHECK(it != params.end(), ValueError, "optimizer load_state_dict: state for '", param,
                 "' but this optimizer has no such parameter; was it saved from another model?");
    bool known = false;
    for (const std::string& b : buffer_names()) known = known || b == buffer;
    COHORT_CHECK(known, ValueError, "optimizer load_state_dict: unknown buffer '", buffer, "' for '", param,
                 "' (this optimizer keeps: ", buffer_names().front(), "...)");
    if (buffer == "step") {  // a per-parameter update count
      COHORT_CHECK(t.dim() == 0, ValueError, "optimizer load_state_dict: '", key,
                   "' is a step count and must be a scalar, got shape ", t.shape_str());
      loaded[param][buffer] = t.to(Device::cpu()).to(DType::i64).clone();
      continue;
    }
    COHORT_CHECK(t.shape() == it->second->shape(), ValueError, "optimizer load_state_dict: '", key, "' has shape ",
                 t.shape_str(), " but the parameter has shape ", it->second->shape_str());
    loaded[param][buffer] = t.to(it->second->device()).to(it->second->dtype()).clone();
  }
  state_ = std::move(loaded);
  step_count_ = step;
  for (size_t i = 0; i < groups_.size(); ++i)
    if (!std::isnan(lrs[i])) groups_[i].lr = lrs[i];
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  NoGradGuard no_grad;
  // CPU gradients are summed here; CUDA ones are listed per device and summed there.
  std::vector<std::pair<Device, std::vector<Tensor>>> on_cuda;
  double total = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!g.is_contiguous()) {
      // Scaled in place below, an expanded view (stride 0) would scale its shared elements once per
      // view of them; the kernels also want contiguous memory. Same values, own memory.
      g = g.contiguous();
      Tensor(p).set_grad(g);
    }
    if (g.device().is_cuda()) {
      auto it = std::find_if(on_cuda.begin(), on_cuda.end(), [&](const auto& d) { return d.first == g.device(); });
      if (it == on_cuda.end()) it = on_cuda.insert(on_cuda.end(), {g.device(), {}});
      it->second.push_back(g);
      continue;
    }
    // Squares summed in double with independent lanes: one pass, no f64 copy of the gradient.
    dispatch_floating(g.dtype(), "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      const T* x = g.data_ptr<T>();
      total += detail::lane_sum<double>(g.numel(), [x](int64_t i) {
        const double v = static_cast<double>(x[i]);
        return v * v;
      });
    });
  }
  for (const auto& [device, grads] : on_cuda) {
    const Tensor sum = Tensor::empty({}, TensorOptions(DType::f64).with_device(device));
    detail::cuda::sum_of_squares(grads, sum);
    total += sum.item();  // the one wait for this device
  }
  total = std::sqrt(total);
  if (total > max_norm) {
    const double scale = max_norm / (total + 1e-6);
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (g.defined() && g.device().is_cpu()) mul_(g, scale);
    }
    for (const auto& [device, grads] : on_cuda) detail::cuda::scale_(grads, scale);
  }
  return total;
}

}  // namespace cohort
