#include "cohort/core/train/fit.h"

#include <chrono>
#include <cmath>
#include <cstdio>

#include "cohort/core/amp.h"
#include "cohort/core/autograd.h"
#include "cohort/core/nn/loss.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/ops/reduction.h"
#include "cohort/core/train/callbacks.h"
#include "cohort/core/train/progress.h"

namespace cohort {

LossFn cross_entropy_loss() {
  return [](const Tensor& output, const Tensor& target) {
    if (output.dim() == target.dim() + 1 && output.dim() > 2) {
      // (B, T, C) outputs with (B, T) targets: every position is an example.
      return cross_entropy(output.reshape({-1, output.size(-1)}), target.reshape({-1}));
    }
    return cross_entropy(output, target);
  };
}

LossFn mse_loss_fn() {
  return [](const Tensor& output, const Tensor& target) { return mse_loss(output, target); };
}

namespace {

// Number of correct argmax predictions, or -1 when the output is not a classification of target.
double correct_count(const Tensor& output, const Tensor& target) {
  if (is_floating(target.dtype()) || output.dim() != target.dim() + 1) return -1;
  return eq(argmax(output.detach(), -1), target).to(DType::f64).sum().item();
}

double average(const FitOptions& o, double v) { return o.average_metric ? o.average_metric(v) : v; }

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

}  // namespace

Device model_device(const Module& model) {
  for (const auto& [name, p] : model.named_parameters()) return p.device();
  for (const auto& [name, b] : model.named_buffers()) return b.device();
  return Device::cpu();
}

StepOutput forward_backward_step(Module& model, const LossFn& loss, const Batch& batch,
                                 const MixedPrecision& mixed_precision) {
  const Device device = model_device(model);
  const Batch b = batch.to(device, /*non_blocking=*/true);
  StepOutput out;
  Tensor l;
  {
    std::optional<AutocastGuard> autocast;
    if (mixed_precision.autocast) autocast.emplace(device.type, *mixed_precision.autocast);
    out.output = model.forward(b.data);
    // The loss in f32, as torch.autocast computes it: cohort's autocast leaves cross_entropy in its
    // input's dtype, and an f16 loss times a GradScaler's 65536 would overflow.
    const DType dt = out.output.dtype();
    const bool half = dt == DType::bf16 || dt == DType::f16;
    l = loss(mixed_precision.autocast && half ? out.output.to(DType::f32) : out.output, b.target);
  }
  (mixed_precision.grad_scaler != nullptr ? mixed_precision.grad_scaler->scale(l) : l).backward();
  out.loss = l.item();
  return out;
}

bool optimizer_step(Optimizer& optimizer, const std::vector<Tensor>& params, double max_norm,
                    const MixedPrecision& mixed_precision) {
  GradScaler* scaler = mixed_precision.grad_scaler;
  if (scaler != nullptr) scaler->unscale_(optimizer);  // clip the true gradients
  if (max_norm > 0) clip_grad_norm(params, max_norm);
  if (scaler == nullptr) {
    optimizer.step();
    return true;
  }
  const bool stepped = scaler->step(optimizer);
  scaler->update();
  return stepped;
}

Metrics evaluate(Module& model, const LossFn& loss, DataLoader& loader, bool accuracy,
                 const std::function<double(double)>& average_metric) {
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  double loss_sum = 0, correct = 0, examples = 0, positions = 0;
  loader.start_epoch(0);
  const Device device = model_device(model);
  Batch host;
  while (loader.next(&host)) {
    const Batch b = host.to(device, /*non_blocking=*/true);  // `host` lives until item() below has waited
    const Tensor out = model.forward(b.data);
    const double n = static_cast<double>(b.data.size(0));
    loss_sum += loss(out, b.target).item() * n;
    examples += n;
    if (accuracy) {
      const double c = correct_count(out, b.target);
      if (c >= 0) {
        correct += c;
        positions += static_cast<double>(b.target.numel());
      }
    }
  }
  model.train(was_training);
  auto avg = [&](double v) { return average_metric ? average_metric(v) : v; };
  Metrics m;
  m["loss"] = examples > 0 ? avg(loss_sum / examples) : NAN;
  if (accuracy && positions > 0) m["accuracy"] = avg(correct / positions);
  return m;
}

History fit(Module& model, const LossFn& loss, Optimizer& optimizer, DataLoader& train, FitOptions options) {
  COHORT_CHECK(options.epochs > 0 || options.max_steps > 0, ValueError,
               "fit: set epochs > 0 or max_steps > 0 (got epochs ", options.epochs, ", max_steps ", options.max_steps, ")");
  TrainState s;
  s.model = &model;
  s.optimizer = &optimizer;
  s.batches_per_epoch = train.batches_per_epoch();
  s.step = options.initial_step;
  s.total_steps = options.max_steps > 0 ? options.max_steps : options.epochs * s.batches_per_epoch;
  const int64_t last_epoch = options.max_steps > 0 ? INT64_MAX : options.epochs;
  std::vector<std::shared_ptr<Callback>>& cbs = options.callbacks;
  History history;
  const bool print = options.verbose && options.is_main;
  std::unique_ptr<ProgressBar> bar;
  if (print) bar = std::make_unique<ProgressBar>(s.total_steps, "", stdout, options.log_every);

  model.train();
  const Device device = model_device(model);
  for (auto& cb : cbs) cb->on_train_begin(s);
  const auto t0 = std::chrono::steady_clock::now();
  int64_t samples = 0;
  for (s.epoch = options.initial_epoch; s.epoch < last_epoch && !s.stop_training && s.step < s.total_steps; ++s.epoch) {
    if (!(options.resume_loader && s.epoch == options.initial_epoch)) train.start_epoch(s.epoch);
    for (auto& cb : cbs) cb->on_epoch_begin(s);
    double loss_sum = 0, correct = 0, positions = 0, seen = 0;
    s.epoch_metrics.clear();
    Batch host;
    for (s.batch = train.position().batch; !s.stop_training && s.step < s.total_steps && train.next(&host);
         ++s.batch) {
      for (auto& cb : cbs) cb->on_batch_begin(s);
      // On a GPU the copy is queued (asynchronous from a pinning loader's memory); `host` stays
      // alive until the loss is read back below, after the copy. On the CPU, b is host.
      const Batch b = host.to(device, /*non_blocking=*/true);
      optimizer.zero_grad();
      const StepOutput step_out = options.forward_backward
                                      ? options.forward_backward(b)
                                      : forward_backward_step(model, loss, b, options.mixed_precision);
      const Tensor& out = step_out.output;
      optimizer_step(optimizer, model.parameters(), options.clip_grad_norm, options.mixed_precision);
      if (options.scheduler != nullptr) options.scheduler->step();
      ++s.step;
      s.batch_size = b.data.size(0);
      samples += s.batch_size;
      s.batch_loss = step_out.loss;
      loss_sum += s.batch_loss * static_cast<double>(s.batch_size);
      seen += static_cast<double>(s.batch_size);
      if (options.accuracy) {
        const double c = correct_count(out, b.target);
        if (c >= 0) {
          correct += c;
          positions += static_cast<double>(b.target.numel());
        }
      }
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      s.samples_per_second = elapsed > 0 ? static_cast<double>(samples) / elapsed : 0;
      s.epoch_metrics["loss"] = loss_sum / seen;
      if (positions > 0) s.epoch_metrics["accuracy"] = correct / positions;
      s.epoch_metrics["lr"] = optimizer.param_groups()[0].lr;
      for (auto& cb : cbs) cb->on_batch_end(s);
      if (bar) {
        std::string extra = "loss " + fmt("%.4f", s.batch_loss);
        if (positions > 0) extra += "  acc " + fmt("%.3f", correct / positions);
        extra += "  " + fmt("%.0f", s.samples_per_second) + " samples/s";
        bar->update(s.step - options.initial_step, extra, s.step > options.initial_step ?
                    static_cast<double>(s.step - options.initial_step) / std::max(elapsed, 1e-9) : 0);
      }
    }
    // Epoch metrics averaged over ranks; then validation.
    for (auto& [k, v] : s.epoch_metrics)
      if (k != "lr") v = average(options, v);
    if (options.validation != nullptr) {
      const Metrics val = evaluate(model, loss, *options.validation, options.accuracy, options.average_metric);
      for (const auto& [k, v] : val) s.epoch_metrics["val_" + k] = v;
    }
    for (auto& cb : cbs) cb->on_epoch_end(s);
    history.epochs.push_back(s.epoch_metrics);
    if (print && !bar->is_terminal()) {
      std::string line = "epoch " + std::to_string(s.epoch + 1);
      for (const auto& [k, v] : s.epoch_metrics) line += "  " + k + " " + fmt("%.4g", v);
      std::printf("%s\n", line.c_str());
    }
  }
  for (auto& cb : cbs) cb->on_train_end(s);
  if (bar) bar->finish("loss " + fmt("%.4f", s.batch_loss));
  history.steps = s.step;
  history.last_loss = s.batch_loss;
  return history;
}

}  // namespace cohort
