// Optimizer, gradient-clipping and loss-scaling kernels on CUDA tensors, as core/src/optim calls
// them (implementation-only header, free of CUDA types so that every build compiles the callers;
// cuda/stubs_optim.cpp throws in a build without CUDA).
//
// Each entry point takes a list of tensors and updates them all with as few launches as it can:
// the list is split by (device, dtype) and then into chunks of up to 48 tensors, and one launch
// handles a chunk (the "multi-tensor apply" of PyTorch's fused and foreach optimizers). The
// tensors arrive as the CPU loops get them: contiguous, a parameter and its gradient and state
// buffers of one dtype and shape, on one CUDA device. The arithmetic is the CPU loops'
// (optim/sgd_adam.cpp, clip_grad_norm and GradScaler::unscale_) in the same computing type
// (float for f32, bf16 and f16; double for f64). Everything is queued on the current stream of the
// tensors' device; nothing here waits for the device.
#pragma once

#include <vector>

#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

// One parameter of an SGD step. `momentum_buffer` is undefined when momentum is 0; `fresh` says the
// buffer was just created (zeros) and takes the step's gradient as is (buf = d, as torch does).
struct SgdTensors {
  Tensor param, grad, momentum_buffer;
  bool fresh = false;
};
// d = g + wd p; buf = momentum buf + (1 - dampening) d (buf = d when fresh);
// p -= lr (nesterov ? d + momentum buf : buf)   (p -= lr d without momentum).
void sgd_step(const std::vector<SgdTensors>& tensors, double lr, double weight_decay, double momentum, double dampening,
              bool nesterov);

// One parameter of an Adam step, with its own bias corrections (each parameter counts its own
// updates): step_size = lr / (1 - beta1^t), bias_correction2_sqrt = sqrt(1 - beta2^t).
struct AdamTensors {
  Tensor param, grad, exp_avg, exp_avg_sq;
  double step_size = 0, bias_correction2_sqrt = 1;
};
// m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= step_size m / (sqrt(v) / bc2 + eps), with
// g += wd p first (Adam), or p *= 1 - lr wd first (decoupled: AdamW).
void adam_step(const std::vector<AdamTensors>& tensors, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled);

// The sum of x^2 over every element of every tensor (floating, contiguous, all on out's device),
// accumulated in double, written to `out` (a one-element f64 tensor on a CUDA device). The order
// of the additions is fixed (per-block partial sums, then one block adds them up in order), so
// the result is the same from run to run; it differs from the CPU's order only in rounding.
void sum_of_squares(const std::vector<Tensor>& tensors, const Tensor& out);

// t *= scale for every tensor, as the CPU's mul_(t, scale) computes it: the scale rounded to t's
// dtype, the product in the computing type, rounded back.
void scale_(const std::vector<Tensor>& tensors, double scale);

// GradScaler::unscale_: t *= inv_scale (in the computing type) for every tensor, and found_inf
// (a one-element f32 tensor on the tensors' device) is set to 1 where any element was inf or NaN
// before the multiplication (it is left as it was otherwise: the caller zeroes it first).
void unscale_and_check_(const std::vector<Tensor>& tensors, const Tensor& found_inf, float inv_scale);

}  // namespace cohort::detail::cuda
