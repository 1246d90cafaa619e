// Automatic mixed precision: the matrix products of a model run in bf16 or f16 on the GPU (tensor
// cores, half the memory traffic) while its parameters, the master weights, stay in f32.
//
//   using namespace cohort;
//   model->to(Device::cuda(0));                                 // f32 parameters
//   Batch b;
//   while (loader.next(&b)) {
//     b = b.to(Device::cuda(0));
//     Tensor loss;
//     {
//       AutocastGuard autocast(DeviceType::cuda, DType::bf16);
//       Tensor logits = model->forward(b.data);                 // linear, attention, ... in bf16
//       loss = cross_entropy(logits.to(DType::f32), b.target);  // the loss in f32
//     }
//     loss.backward();                                          // f32 gradients on the f32 parameters
//     optimizer.step();
//     optimizer.zero_grad();
//   }
//
// Under a guard, on its thread and for its scope, these ops on CUDA tensors first cast their f32,
// bf16 and f16 inputs to the guard's dtype: matmul, bmm, linear, conv2d,
// scaled_dot_product_attention and self_attention. They compute there with f32 accumulation and
// return that dtype. The casts are ordinary differentiable ops, so backward runs the products in the
// 16-bit dtype too and turns each gradient back into f32 where the f32 parameter was cast. Every
// other op is unchanged: elementwise ops promote mixed inputs (bf16 + f32 is f32), and reductions,
// softmax and norms compute 16-bit inputs in f32 inside their kernels.
//
// Guards nest, the innermost deciding; AutocastGuard(DeviceType::cuda, dtype, false) turns autocast
// off in its scope (for a part that must run in f32).
//
// What differs from PyTorch's torch.autocast, the model for this:
// - CUDA only: cohort's CPU kernels already compute 16-bit inputs in f32, so CPU autocast would only
//   add casts (the guard refuses DeviceType::cpu).
// - No list of ops forced to f32: softmax, log_softmax, layer_norm and cross_entropy keep their
//   input's dtype (computing in f32 inside). Convert logits with .to(DType::f32) for an f32 loss.
// - Casts are not cached: a weight used by two ops in one region is cast twice.
// - The gradient scaler is separate, as in PyTorch: with f16, small gradients underflow unless the
//   loss is scaled (GradScaler, optim/grad_scaler.h); bf16 has f32's exponent range and needs none.
// - As in PyTorch, f64 inputs are left alone, so an op mixing f64 with f32 inputs fails with a
//   dtype error under autocast.
#pragma once

#include "cohort/core/device.h"
#include "cohort/core/dtype.h"

namespace cohort {

class AutocastGuard {
 public:
  // dtype: DType::bf16 or DType::f16. enabled = false turns autocast off in the scope instead.
  AutocastGuard(DeviceType device, DType dtype, bool enabled = true);
  ~AutocastGuard();
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool previous_enabled_;
  DType previous_dtype_;
};

// Whether autocast is on for `device` on the calling thread, and its dtype (bf16 when never set).
bool is_autocast_enabled(DeviceType device = DeviceType::cuda);
DType autocast_dtype(DeviceType device = DeviceType::cuda);

}  // namespace cohort
