// fit(): the common training loop, Keras-style, built only on the public API (modules, losses,
// optimizers, data loaders), so writing the loop by hand stays first-class.
//
//   FitOptions opt;
//   opt.epochs = 3;
//   opt.callbacks.push_back(std::make_shared<EarlyStopping>("val_loss", 2));
//   History h = fit(*model, cross_entropy_loss(), optimizer, train_loader, opt);
//
// Each step: zero_grad, forward, loss, backward, (clip), optimizer step, (schedule). Metrics are
// the loss and, for classification outputs, accuracy (argmax over the last dim against the target).
//
// On a GPU: move the model first (model->to(Device::cuda())) and make the optimizer after; fit()
// moves every batch to the model's device (asynchronously when the loader pins its batches,
// DataLoaderOptions::pin_memory). Mixed precision: FitOptions::mixed_precision runs the forward
// and the loss under autocast (bf16, or f16 with a GradScaler for the backward and the step).
// forward_backward_step() and optimizer_step() are fit()'s step, for loops written by hand.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cohort/core/data/loader.h"
#include "cohort/core/nn/module.h"
#include "cohort/core/optim/grad_scaler.h"
#include "cohort/core/optim/optimizer.h"
#include "cohort/core/optim/schedule.h"

namespace cohort {

using LossFn = std::function<Tensor(const Tensor& output, const Tensor& target)>;
LossFn cross_entropy_loss();  // flattens (B, T, C) outputs and (B, T) targets
LossFn mse_loss_fn();

// Metric name -> value, e.g. {"loss": 0.31, "accuracy": 0.9, "val_loss": 0.35}.
using Metrics = std::map<std::string, double>;

class Callback;

// What one step's forward and backward produced: the batch's mean loss and the model's output
// (for accuracy), gradients already in the parameters.
struct StepOutput {
  double loss = 0;
  Tensor output;
};

// Mixed precision for a training step.
struct MixedPrecision {
  // bf16 or f16: the forward and the loss run under AutocastGuard(the model's device type, this)
  // (amp.h: CUDA only), the loss on the output converted to f32; unset: in the parameters' dtype.
  std::optional<DType> autocast;
  // Loss scaling (f16): backward of scale(loss), unscale_ before clipping, the optimizer step
  // skipped when a gradient overflowed, update() after. Null: none.
  GradScaler* grad_scaler = nullptr;
};

// The device of the model's first parameter (or buffer); the CPU for a model with neither.
Device model_device(const Module& model);

// Forward, loss and backward of one batch, as fit() takes them: the batch moved to the model's
// device (non-blocking: a pinned batch is copied while the host goes on), forward and loss under
// autocast, backward of the (scaled) loss. Returns the loss value (unscaled; the host waits for it)
// and the output.
StepOutput forward_backward_step(Module& model, const LossFn& loss, const Batch& batch,
                                 const MixedPrecision& mixed_precision = {});

// The optimizer step after it: unscale_ (with a scaler), clip_grad_norm(params, max_norm) when
// max_norm > 0, optimizer.step() (skipped by a scaler on overflow), the scaler's update(). Returns
// whether the optimizer stepped.
bool optimizer_step(Optimizer& optimizer, const std::vector<Tensor>& params, double max_norm,
                    const MixedPrecision& mixed_precision = {});

struct TrainState {
  Module* model = nullptr;
  Optimizer* optimizer = nullptr;
  int64_t epoch = 0;           // 0-based
  int64_t step = 0;            // optimizer steps taken so far (global)
  int64_t batch = 0;           // batch index within the epoch
  int64_t batches_per_epoch = 0;
  int64_t total_steps = 0;     // steps this fit() will take at most
  double batch_loss = 0;       // loss of the last batch
  int64_t batch_size = 0;
  Metrics epoch_metrics;       // running averages over the epoch so far (and val_* at epoch end)
  double samples_per_second = 0;
  bool stop_training = false;  // a callback sets this to end fit() after the current step
};

struct FitOptions {
  int64_t epochs = 1;
  int64_t max_steps = -1;                // stop after this many steps in total (-1: no limit)
  DataLoader* validation = nullptr;       // evaluated at the end of each epoch
  bool accuracy = true;                  // also track accuracy (classification outputs)
  double clip_grad_norm = 0;             // > 0: clip the global gradient norm to this
  MixedPrecision mixed_precision;        // autocast and loss scaling (none by default)
  LRScheduler* scheduler = nullptr;      // stepped after every optimizer step
  std::vector<std::shared_ptr<Callback>> callbacks;
  // Progress: a bar on a terminal, log lines every log_every steps otherwise. verbose = false: none.
  bool verbose = true;
  int64_t log_every = 50;
  // For data parallelism: averages a metric over ranks (identity on one rank), and whether this
  // rank prints (rank 0 only).
  std::function<double(double)> average_metric;
  bool is_main = true;
  // Replaces fit()'s forward, loss and backward for strategies that run the step themselves
  // (parallel::Mirrored::step_fn runs one replica per thread); empty: model.forward, loss, backward.
  std::function<StepOutput(const Batch&)> forward_backward;
  // Resume: continue from this step / loader position (set by a checkpointing caller).
  int64_t initial_step = 0;
  int64_t initial_epoch = 0;
  bool resume_loader = false;  // the loader was restore()d: continue its epoch instead of restarting it
};

struct History {
  std::vector<Metrics> epochs;  // one entry per finished epoch (train and val metrics)
  int64_t steps = 0;
  double last_loss = 0;
};

History fit(Module& model, const LossFn& loss, Optimizer& optimizer, DataLoader& train, FitOptions options);

// Average loss (and accuracy) of a model over a loader, in eval mode and without autograd.
Metrics evaluate(Module& model, const LossFn& loss, DataLoader& loader, bool accuracy = true,
                 const std::function<double(double)>& average_metric = nullptr);

}  // namespace cohort
