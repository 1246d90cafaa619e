#include "cohort/core/nn/module.h"

#include <set>
#include <sstream>

#include "cohort/core/autograd.h"

namespace cohort {

Tensor Module::forward(const Tensor&) {
  COHORT_THROW(ValueError, type_name_, ": this module has no forward(const Tensor&); call its own forward "
               "overload");
}

void Module::check_new_name(const std::string& name) const {
  COHORT_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, type_name_,
               ": invalid name '", name, "' (names are non-empty and have no dots; dots join nested names)");
  auto taken = [&](const auto& list) {
    for (const auto& [n, v] : list)
      if (n == name) return true;
    return false;
  };
  COHORT_CHECK(!taken(parameters_) && !taken(buffers_) && !taken(children_), ValueError, type_name_,
               ": the name '", name, "' is already registered");
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name);
  COHORT_CHECK(value.defined(), ValueError, type_name_, ": parameter '", name, "' is undefined");
  if (requires_grad && !value.requires_grad()) value.requires_grad_(true);
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::collect(const std::string& prefix, bool params, bool recurse, NamedTensors* out) const {
  for (const auto& [name, t] : params ? parameters_ : buffers_) out->emplace_back(prefix + name, t);
  if (!recurse) return;
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, true, out);
}

Module& Module::to(Device device) {
  check_device_available(device, "Module::to");
  NoGradGuard no_grad;
  auto move = [&](Tensor t) {
    if (t.device() == device) return;
    const Tensor grad = t.grad();
    t.set_data(t.detach().to(device));
    if (grad.defined()) t.set_grad(grad.to(device));
  };
  for (const auto& [name, t] : named_parameters()) move(t);
  for (const auto& [name, t] : named_buffers()) move(t);
  return *this;
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, recurse, &out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters(recurse)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, recurse, &out);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  apply([&](const std::string& name, Module& m) { out.emplace_back(name, &m); });
  return out;
}

void Module::apply(const std::function<void(const std::string&, Module&)>& fn) {
  std::function<void(const std::string&, Module&)> walk = [&](const std::string& name, Module& m) {
    fn(name, m);
    for (auto& [child_name, child] : m.children_) walk(name.empty() ? child_name : name + "." + child_name, *child);
  };
  walk("", *this);
}

void Module::train(bool on) {
  apply([on](const std::string&, Module& m) { m.training_ = on; });
}

void Module::zero_grad() {
  for (auto& [name, p] : named_parameters()) p.set_grad(Tensor());
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, p] : named_parameters()) n += p.numel();
  return n;
}

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, t] : named_parameters()) out[name] = t.detach();
  for (auto& [name, t] : named_buffers()) out[name] = t.detach();
  return out;
}

void Module::load_state_dict(const StateDict& state, bool strict) {
  NamedTensors own = named_parameters();
  NamedTensors buffers = named_buffers();
  own.insert(own.end(), buffers.begin(), buffers.end());
  std::vector<std::string> missing, mismatched, unexpected;
  std::set<std::string> own_names;
  for (auto& [name, t] : own) {
    own_names.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
    } else if (it->second.shape() != t.shape()) {
      mismatched.push_back(name + " (expected " + t.shape_str() + ", got " + it->second.shape_str() + ")");
    }
  }
  for (auto& [name, t] : state)
    if (!own_names.count(name)) unexpected.push_back(name);
  auto join = [](const std::vector<std::string>& v) {
    std::ostringstream out;
    for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
    return out.str();
  };
  // A shape mismatch is an error even when not strict: loading it would corrupt the model.
  if (!mismatched.empty() || (strict && (!missing.empty() || !unexpected.empty()))) {
    std::ostringstream msg;
    msg << type_name_ << ": load_state_dict failed;";
    if (!missing.empty()) msg << " missing keys: " << join(missing) << ";";
    if (!unexpected.empty()) msg << " unexpected keys: " << join(unexpected) << ";";
    if (!mismatched.empty()) msg << " shape mismatches: " << join(mismatched) << ";";
    msg << " nothing was loaded (pass strict=false to load only the keys that match)";
    throw ValueError(msg.str(), __FILE__, __LINE__);
  }
  NoGradGuard no_grad;
  for (auto& [name, t] : own) {
    auto it = state.find(name);
    if (it != state.end()) t.copy_(it->second);
  }
}

}  // namespace cohort
