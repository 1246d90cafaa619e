// GradScaler: dynamic loss scaling for f16 mixed precision, with the semantics of PyTorch's
// torch.cuda.amp.GradScaler.
//
//   GradScaler scaler;                                  // scale 65536, doubled after 2000 clean steps
//   for (...) {
//     optimizer.zero_grad();
//     Tensor loss;
//     { AutocastGuard autocast(DeviceType::cuda, DType::f16); loss = loss_fn(model->forward(x), y); }
//     scaler.scale(loss).backward();                    // gradients are scale x the true ones
//     scaler.unscale_(optimizer);                       // true gradients again (before clipping)
//     clip_grad_norm(model->parameters(), 1.0);
//     scaler.step(optimizer);                           // skipped if a gradient was inf or NaN
//     scaler.update();                                  // halve the scale on overflow, else maybe grow
//   }
//
// Small f16 gradients underflow to zero; multiplying the loss by a large scale lifts them into
// f16's range. When a scaled gradient overflows (inf, or NaN) the step is skipped and the scale
// halved; after `growth_interval` steps in a row without overflow it is doubled. unscale_ runs on
// the gradients' device (one launch per device for all of them, on a GPU) and leaves the overflow
// flag there; step() reads it back, the one time the host waits. Works on CPU tensors too.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "cohort/core/optim/optimizer.h"

namespace cohort {

struct GradScalerOptions {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
  bool enabled = true;  // false: scale() and unscale_() do nothing, step() just steps
};

class GradScaler {
 public:
  explicit GradScaler(GradScalerOptions options = {});

  // loss * scale (differentiable). The loss itself when disabled.
  Tensor scale(const Tensor& loss) const;
  // Divides every gradient of `optimizer`'s parameters by the scale and records whether any was
  // inf or NaN. At most once per optimizer between update()s (step() calls it if you did not).
  // A gradient on a GPU that is not contiguous is replaced by a contiguous copy first.
  void unscale_(Optimizer& optimizer);
  // optimizer.step() unless a gradient was inf or NaN; returns whether it stepped. At most once
  // per optimizer between update()s.
  bool step(Optimizer& optimizer);
  // Adjusts the scale after the step(s): backoff_factor x on overflow (and the count of clean
  // steps restarts), growth_factor x after growth_interval clean steps in a row. Needs an
  // unscale_() or step() since the last update().
  void update();

  double get_scale() const { return options_.enabled ? static_cast<double>(scale_) : 1.0; }
  bool is_enabled() const { return options_.enabled; }
  // Clean steps in a row since the scale last changed.
  int64_t growth_tracker() const { return growth_tracker_; }

  // {"scale": f64 scalar, "growth_tracker": i64 scalar}, for checkpoints.
  StateDict state_dict() const;
  void load_state_dict(const StateDict& state);

 private:
  enum class Stage { ready, unscaled, stepped };
  struct PerOptimizer {
    Stage stage = Stage::ready;
    std::vector<Tensor> found_inf;  // one f32 flag per device that held gradients
    int known = -1;                 // found_inf read back: 0 or 1; -1: not read yet
  };
  bool found_inf(PerOptimizer& state);  // reads the flags back (once)

  GradScalerOptions options_;
  float scale_;  // float, as torch keeps it: growth and backoff round to f32
  int64_t growth_tracker_ = 0;
  std::map<const Optimizer*, PerOptimizer> per_optimizer_;
};

}  // namespace cohort
