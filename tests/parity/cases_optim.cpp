// Parity cases for the optimizers: SGD (momentum, dampening, nesterov, weight decay), Adam and
// AdamW, one step and three steps with fresh random gradients each step, f32 and f64, one and two
// parameter groups.
//
// A case writes the initial parameters and every step's gradients as inputs (not differentiable:
// nothing here runs backward) and, as named outputs, the parameters after the last step and every
// entry of the optimizer's state_dict() ("fc.weight.momentum_buffer", "step", "group.0.lr", ...).
// torch_optim.py runs torch.optim on the same values and names its results the same way, so a
// buffer that torch keeps and cohort does not (or the other way round) fails the case too.
#include <memory>

#include "parity_case.h"

namespace cohort::parity {

namespace {

using ParamShapes = std::vector<std::pair<std::string, Shape>>;

// Dotted names like a model's (the state keys then have two dots), small shapes that are not square.
const ParamShapes kParams = {{"fc.weight", {4, 3}}, {"fc.bias", {4}}, {"emb.weight", {6, 2}}};
// Over parallel_for's grain (16384 elements), so the update runs in several chunks.
const ParamShapes kLargeParams = {{"big.weight", {150, 120}}, {"big.bias", {150}}};

struct OptimSpec {
  std::string kind;  // "sgd", "adam" or "adamw"
  SGDOptions sgd;
  AdamOptions adam;
  int steps = 1;
  DType dtype = DType::f32;
  ParamShapes params = kParams;
  // The last parameter in a second group with its own lr and weight decay.
  bool two_groups = false;
  // This parameter has no gradient in the first step (the optimizer skips it then).
  std::string no_grad_first_step;
};

double base_lr(const OptimSpec& s) { return s.kind == "sgd" ? s.sgd.lr : s.adam.lr; }
double base_weight_decay(const OptimSpec& s) { return s.kind == "sgd" ? s.sgd.weight_decay : s.adam.weight_decay; }

std::unique_ptr<Optimizer> make_optimizer(const OptimSpec& s, NamedTensors params) {
  if (s.kind == "sgd") return std::make_unique<SGD>(std::move(params), s.sgd);
  if (s.kind == "adam") return std::make_unique<Adam>(std::move(params), s.adam);
  return std::make_unique<AdamW>(std::move(params), s.adam);
}

void write_attrs(CaseBuilder& c, const OptimSpec& s, const std::vector<double>& group_lr,
                 const std::vector<double>& group_wd, const std::vector<int64_t>& group_of) {
  c.attr("optimizer", s.kind);
  c.attr("steps", s.steps);
  std::vector<std::string> names;
  for (const auto& [name, shape] : s.params) names.push_back(name);
  c.attr("params", names);
  c.attr("group_of", group_of);
  c.attr("group_lr", group_lr);
  c.attr("group_weight_decay", group_wd);
  if (s.kind == "sgd") {
    c.attr("momentum", s.sgd.momentum);
    c.attr("dampening", s.sgd.dampening);
    c.attr("nesterov", s.sgd.nesterov);
  } else {
    c.attr("betas", std::vector<double>{s.adam.beta1, s.adam.beta2});
    c.attr("eps", s.adam.eps);
  }
}

void run_optimizer(CaseBuilder& c, const OptimSpec& s) {
  // Group 0 takes the optimizer's defaults; group 1 (if any) 2.5x the lr and weight decay 0.2.
  std::vector<double> group_lr = {base_lr(s)}, group_wd = {base_weight_decay(s)};
  if (s.two_groups) {
    group_lr.push_back(2.5 * base_lr(s));
    group_wd.push_back(0.2);
  }
  std::vector<int64_t> group_of;
  NamedTensors params, groups[2];
  for (size_t i = 0; i < s.params.size(); ++i) {
    const auto& [name, shape] = s.params[i];
    const int64_t g = s.two_groups && i + 1 == s.params.size() ? 1 : 0;
    group_of.push_back(g);
    // The input keeps the initial values; the optimizer updates a copy.
    Tensor initial = c.input(name, c.randn(shape, s.dtype), false);
    params.emplace_back(name, initial.clone().requires_grad_());
    groups[g].push_back(params.back());
  }
  write_attrs(c, s, group_lr, group_wd, group_of);

  std::unique_ptr<Optimizer> opt = make_optimizer(s, groups[0]);
  if (s.two_groups) {
    ParamGroup g;
    g.params = groups[1];
    g.lr = group_lr[1];
    g.weight_decay = group_wd[1];
    opt->add_param_group(g);
  }
  for (int step = 0; step < s.steps; ++step) {
    for (size_t i = 0; i < params.size(); ++i) {
      auto& [name, p] = params[i];
      if (step == 0 && name == s.no_grad_first_step) {
        p.set_grad(Tensor());
        continue;
      }
      const std::string key = name + "#grad" + std::to_string(step);  // torch_optim.py reads these
      p.set_grad(c.input(key, c.randn(s.params[i].second, s.dtype), false).clone());
    }
    opt->step();
  }
  for (const auto& [name, p] : params) c.output(name, p.detach());
  for (const auto& [key, t] : opt->state_dict()) c.output(key, t);
}

SGDOptions sgd(double lr, double momentum = 0, double dampening = 0, double weight_decay = 0, bool nesterov = false) {
  SGDOptions o;
  o.lr = lr;
  o.momentum = momentum;
  o.dampening = dampening;
  o.weight_decay = weight_decay;
  o.nesterov = nesterov;
  return o;
}

AdamOptions adam(double lr, double weight_decay, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) {
  AdamOptions o;
  o.lr = lr;
  o.weight_decay = weight_decay;
  o.beta1 = beta1;
  o.beta2 = beta2;
  o.eps = eps;
  return o;
}

OptimSpec spec(const std::string& kind, SGDOptions s) {
  OptimSpec o;
  o.kind = kind;
  o.sgd = s;
  return o;
}

OptimSpec spec(const std::string& kind, AdamOptions a) {
  OptimSpec o;
  o.kind = kind;
  o.adam = a;
  return o;
}

void add(CaseList& cases, const std::string& name, const OptimSpec& s) {
  cases.push_back({name, "optimizer", [s](CaseBuilder& c) { run_optimizer(c, s); }});
}

}  // namespace

void add_optim_cases(CaseList& cases) {
  // Every configuration, one step and three steps, in f32 and f64.
  const std::vector<std::pair<std::string, OptimSpec>> configs = {
      {"sgd", spec("sgd", sgd(0.1))},
      {"sgd_momentum", spec("sgd", sgd(0.1, 0.9))},
      {"sgd_dampening", spec("sgd", sgd(0.1, 0.9, 0.3))},
      {"sgd_nesterov", spec("sgd", sgd(0.1, 0.9, 0.0, 0.0, true))},
      {"sgd_weight_decay", spec("sgd", sgd(0.1, 0.0, 0.0, 0.05))},
      {"sgd_momentum_weight_decay", spec("sgd", sgd(0.1, 0.9, 0.0, 0.05))},
      {"sgd_nesterov_weight_decay", spec("sgd", sgd(0.05, 0.8, 0.0, 0.1, true))},
      {"adam", spec("adam", adam(1e-2, 0.0))},
      {"adam_weight_decay", spec("adam", adam(1e-2, 0.1))},
      {"adam_betas_eps", spec("adam", adam(3e-2, 0.0, 0.8, 0.95, 1e-3))},
      {"adamw_wd0_01", spec("adamw", adam(1e-2, 0.01))},
      {"adamw_wd0_1", spec("adamw", adam(1e-2, 0.1))},
  };
  for (const auto& [name, config] : configs) {
    for (int steps : {1, 3}) {
      for (DType dtype : {DType::f32, DType::f64}) {
        OptimSpec s = config;
        s.steps = steps;
        s.dtype = dtype;
        add(cases, "optim_" + name + "_" + std::to_string(steps) + "step_" + dtype_name(dtype), s);
      }
    }
  }

  // Two parameter groups, three steps.
  for (auto [name, base] : {std::pair<std::string, OptimSpec>{"sgd", spec("sgd", sgd(0.1, 0.9))},
                            {"adam", spec("adam", adam(1e-2, 0.0))},
                            {"adamw", spec("adamw", adam(1e-2, 0.01))}}) {
    OptimSpec s = base;
    s.steps = 3;
    s.two_groups = true;
    add(cases, "optim_" + name + "_two_groups", s);
  }

  // A parameter without a gradient in the first step: torch skips it, its state starts at step 2
  // (for Adam: its own step count, so its bias correction is that of its first update).
  for (auto [name, base] : {std::pair<std::string, OptimSpec>{"sgd_momentum", spec("sgd", sgd(0.1, 0.9))},
                            {"adam", spec("adam", adam(1e-2, 0.0))},
                            {"adamw", spec("adamw", adam(1e-2, 0.1))}}) {
    OptimSpec s = base;
    s.steps = 3;
    s.no_grad_first_step = "fc.bias";
    add(cases, "optim_" + name + "_late_grad", s);
  }

  // Large parameters: the update splits into parallel chunks.
  for (auto [name, base] : {std::pair<std::string, OptimSpec>{"sgd_nesterov", spec("sgd", sgd(0.1, 0.9, 0.0, 0.01, true))},
                            {"adam", spec("adam", adam(1e-2, 0.0))},
                            {"adamw", spec("adamw", adam(1e-2, 0.1))}}) {
    OptimSpec s = base;
    s.steps = 3;
    s.params = kLargeParams;
    add(cases, "optim_" + name + "_large", s);
  }
}

}  // namespace cohort::parity
