// Parity cases for clip_grad_norm (vs torch.nn.utils.clip_grad_norm_) and the LR schedules (vs
// torch's StepLR, a LambdaLR with cohort's formula, and torch's own LinearLR + CosineAnnealingLR).
//
// WarmupCosineLR's factor, for a 0-based step s (the rate of the (s+1)-th update):
//   s < warmup:           (s + 1) / warmup
//   warmup <= s < total:  min + (1 - min) * 0.5 * (1 + cos(pi * (s - warmup) / (total - warmup)))
//   s >= total:           min
// For s <= total that is exactly torch's SequentialLR([LinearLR(start_factor=1/warmup,
// total_iters=warmup-1), CosineAnnealingLR(T_max=total-warmup, eta_min=min*lr)], [warmup]); after
// total, torch's cosine climbs back up where cohort's holds at min.
#include <cmath>
#include <memory>
#include <tuple>

#include "parity_case.h"

namespace cohort::parity {

namespace {

using ParamShapes = std::vector<std::pair<std::string, Shape>>;

struct ClipSpec {
  double max_norm;
  DType dtype = DType::f32;
  ParamShapes params = {{"fc.weight", {5, 4}}, {"fc.bias", {5}}, {"out.weight", {3, 5}}};
  std::string no_grad;  // a parameter without a gradient (clip_grad_norm skips it)
};

void run_clip(CaseBuilder& c, const ClipSpec& s) {
  c.attr("max_norm", s.max_norm);
  c.attr("no_grad", s.no_grad);
  std::vector<std::string> names;
  std::vector<Tensor> params;
  for (const auto& [name, shape] : s.params) {
    names.push_back(name);
    Tensor p = zeros(shape, s.dtype).requires_grad_();
    if (name != s.no_grad) p.set_grad(c.input(name, c.randn(shape, s.dtype), false).clone());
    params.push_back(p);
  }
  c.attr("params", names);
  const double norm = clip_grad_norm(params, s.max_norm);
  c.output("total_norm", scalar_tensor(norm, s.dtype));  // torch returns it in the gradients' dtype
  for (size_t i = 0; i < params.size(); ++i)
    if (names[i] != s.no_grad) c.output(names[i] + ".grad", params[i].grad());
}

struct ScheduleSpec {
  std::string schedule;   // "step_lr" or "warmup_cosine"
  std::string reference;  // the torch side: "step_lr", "lambda" or "sequential"
  int64_t steps;          // scheduler.step() calls; the rates before and after each are compared
  int64_t step_size = 0;
  double gamma = 0;
  int64_t warmup = 0, total = 0;
  double min_factor = 0;
};

// Two groups with different initial rates (each group's lr scales from its own initial_lr); the
// output is every group's lr after construction and after each step, (groups, steps + 1).
void run_schedule(CaseBuilder& c, const ScheduleSpec& s) {
  c.attr("schedule", s.schedule);
  c.attr("reference", s.reference);
  c.attr("steps", s.steps);
  c.attr("step_size", s.step_size);
  c.attr("gamma", s.gamma);
  c.attr("warmup", s.warmup);
  c.attr("total", s.total);
  c.attr("min_factor", s.min_factor);
  const std::vector<double> lrs = {0.5, 0.03};
  c.attr("group_lr", lrs);
  Tensor a = zeros({2}).requires_grad_(), b = zeros({2}).requires_grad_();
  SGDOptions o;
  o.lr = lrs[0];
  SGD opt({{"a", a}}, o);
  ParamGroup g;
  g.params = {{"b", b}};
  g.lr = lrs[1];
  g.weight_decay = NAN;
  opt.add_param_group(g);

  std::unique_ptr<LRScheduler> sched;
  if (s.schedule == "step_lr") {
    sched = std::make_unique<StepLR>(opt, s.step_size, s.gamma);
  } else {
    sched = std::make_unique<WarmupCosineLR>(opt, s.warmup, s.total, s.min_factor);
  }
  Tensor out = zeros({2, s.steps + 1}, DType::f64);
  for (int64_t step = 0; step <= s.steps; ++step) {
    if (step > 0) sched->step();
    for (int64_t k = 0; k < 2; ++k) out.select(0, k).select(0, step).fill_(opt.param_groups()[k].lr);
  }
  c.output("lr", out);
}

}  // namespace

void add_schedule_cases(CaseList& cases) {
  // ---- clip_grad_norm: the norms of these gradients are about sqrt(55) ~ 7.4 ----
  for (auto [name, max_norm, dtype, no_grad] :
       {std::tuple<const char*, double, DType, const char*>{"clip_grad_norm", 1.0, DType::f32, ""},
        {"clip_grad_norm_f64", 0.5, DType::f64, ""},
        {"clip_grad_norm_not_clipped", 100.0, DType::f32, ""},  // norm below max_norm: unchanged
        {"clip_grad_norm_missing_grad", 2.0, DType::f32, "fc.bias"}}) {
    ClipSpec s;
    s.max_norm = max_norm;
    s.dtype = dtype;
    s.no_grad = no_grad;
    cases.push_back({name, "clip_grad_norm", [s](CaseBuilder& c) { run_clip(c, s); }});
  }
  ClipSpec large;
  large.max_norm = 1.0;
  large.params = {{"big.weight", {300, 200}}, {"big.bias", {300}}};
  cases.push_back({"clip_grad_norm_large", "clip_grad_norm", [large](CaseBuilder& c) { run_clip(c, large); }});

  // ---- schedules ----
  auto add = [&](const std::string& name, ScheduleSpec s) {
    cases.push_back({name, "lr_schedule", [s](CaseBuilder& c) { run_schedule(c, s); }});
  };
  ScheduleSpec s;
  s.schedule = s.reference = "step_lr";
  s.steps = 12;
  s.step_size = 3;
  s.gamma = 0.5;
  add("step_lr", s);
  s.step_size = 1;
  s.gamma = 0.1;
  s.steps = 6;
  add("step_lr_every_step", s);

  s = ScheduleSpec();
  s.schedule = "warmup_cosine";
  s.reference = "lambda";
  s.warmup = 3;
  s.total = 10;
  s.min_factor = 0.1;
  s.steps = 14;  // past total: held at min
  add("warmup_cosine", s);
  s.warmup = 0;
  s.total = 8;
  s.min_factor = 0.0;
  s.steps = 9;
  add("warmup_cosine_no_warmup", s);
  s.warmup = 1;
  s.total = 5;
  s.min_factor = 0.2;
  s.steps = 7;
  add("warmup_cosine_warmup1", s);
  s.reference = "sequential";  // torch's own schedulers, up to total
  s.warmup = 4;
  s.total = 12;
  s.min_factor = 0.05;
  s.steps = 12;
  add("warmup_cosine_vs_torch_sequential", s);
}

}  // namespace cohort::parity
