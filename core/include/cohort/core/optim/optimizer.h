// Optimizers: SGD, Adam, AdamW over named parameter groups, PyTorch's update rules.
//
//   SGD opt(model->named_parameters(), SGDOptions{.lr = 0.1, .momentum = 0.9});
//   for (...) { opt.zero_grad(); loss(...).backward(); clip_grad_norm(model->parameters(), 1.0); opt.step(); }
//   StateDict s = opt.state_dict();   // "fc1.weight.momentum_buffer", "step", "group.0.lr", ...
//
// Updates run as fused loops over each parameter's memory (no temporaries), under no autograd.
// Parameters on a GPU are updated there, with the same arithmetic, a few kernel launches for all
// of a group's parameters, and their state (momentum, exp_avg, ...) is created on their device:
// move the model to its device (Module::to) before making the optimizer, or at least before its
// first step.
#pragma once

#include <string>
#include <vector>

#include "cohort/core/nn/module.h"

namespace cohort {

// A set of parameters sharing a learning rate and weight decay. `initial_lr` is what schedules
// scale from.
struct ParamGroup {
  NamedTensors params;
  double lr = 0.0;
  double weight_decay = 0.0;
  double initial_lr = 0.0;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (parameters without one are skipped).
  void step();
  // Drops every parameter's gradient (the next backward writes fresh ones).
  void zero_grad();

  std::vector<ParamGroup>& param_groups() { return groups_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // Adds a group; its lr/weight_decay of NaN mean "the optimizer's defaults".
  void add_param_group(ParamGroup group);
  int64_t step_count() const { return step_count_; }

  // Per-parameter buffers keyed "<param name>.<buffer>", plus "step" and "group.<i>.lr". A buffer
  // named "step" is a per-parameter update count (Adam's "fc.weight.step"): a scalar i64; every
  // other buffer has its parameter's shape. Every tensor is on the CPU, ready for save(): buffers
  // of parameters on a GPU are copied (the host waits for them); those on the CPU are the live
  // buffers themselves.
  StateDict state_dict() const;
  // Restores what state_dict() saved. A buffer for a parameter this optimizer does not have, or
  // of the wrong shape, is a ValueError naming it; nothing is changed then. Buffers go to their
  // parameter's device and dtype, wherever they were saved from; step counts stay on the CPU.
  void load_state_dict(const StateDict& state);

 protected:
  Optimizer(NamedTensors params, double lr, double weight_decay);
  // Updates one parameter (contiguous, with a gradient) of `group`; `state` is its buffer map.
  // CPU parameters only: the loops read raw host memory.
  virtual void update(const std::string& name, Tensor& param, const Tensor& grad, const ParamGroup& group,
                      StateDict& state) = 0;

  // A parameter on a CUDA device, its gradient (contiguous, of the parameter's dtype, on its
  // device) and its buffer map.
  struct CudaParam {
    std::string name;
    Tensor param, grad;
    StateDict* state;
  };
  // Updates all of `group`'s CUDA parameters that have a gradient, in as few launches as it can.
  // The default throws: an optimizer without a GPU update says so instead of reading device
  // memory on the host.
  virtual void update_cuda(const ParamGroup& group, const std::vector<CudaParam>& params);
  // Names of the per-parameter buffers this optimizer keeps (for load_state_dict checks).
  virtual std::vector<std::string> buffer_names() const = 0;

  std::vector<ParamGroup> groups_;
  std::map<std::string, StateDict> state_;  // parameter name -> buffer name -> tensor
  int64_t step_count_ = 0;
  double default_lr_, default_weight_decay_;
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(NamedTensors params, SGDOptions options);
  SGDOptions options;

 protected:
  void update(const std::string& name, Tensor& param, const Tensor& grad, const ParamGroup& group,
              StateDict& state) override;
  void update_cuda(const ParamGroup& group, const std::vector<CudaParam>& params) override;
  std::vector<std::string> buffer_names() const override { return {"momentum_buffer"}; }
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // Adam: L2 added to the gradient; AdamW: decoupled
};

class Adam : public Optimizer {
 public:
  Adam(NamedTensors params, AdamOptions options, bool decoupled_weight_decay = false);
  AdamOptions options;

 protected:
  void update(const std::string& name, Tensor& param, const Tensor& grad, const ParamGroup& group,
              StateDict& state) override;
  void update_cuda(const ParamGroup& group, const std::vector<CudaParam>& params) override;
  // "step": the parameter's own update count (a scalar i64), for its bias correction.
  std::vector<std::string> buffer_names() const override { return {"exp_avg", "exp_avg_sq", "step"}; }

 private:
  bool decoupled_;
};

// Adam with decoupled weight decay (Loshchilov & Hutter); PyTorch's default weight_decay 0.01.
class AdamW : public Adam {
 public:
  AdamW(NamedTensors params, AdamOptions options) : Adam(std::move(params), options, true) {}
};

// Scales all gradients so their global L2 norm is at most max_norm (by max_norm / (norm + 1e-6));
// returns the norm before. The squares are summed in double. Gradients on a GPU are summed there
// (one reduction for all of a device's gradients) and scaled there; the host reads the norm back
// once per device, the only time it waits. A gradient that is not contiguous (an expanded view)
// is replaced by a contiguous copy of it first.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace cohort
