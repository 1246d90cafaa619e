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
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cohort/core/data/loader.h"
#include "cohort/core/nn/module.h"
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
