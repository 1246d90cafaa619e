// Autocast (amp.h): under an AutocastGuard the products on cuda:0 run in bf16/f16 and are compared
// with the same ops in f32 on the CPU, at the 16-bit dtype's tolerance; gradients must reach the f32
// inputs (the master weights) as f32.
//
// Tolerance: the inputs are rounded to the 16-bit dtype (2^-9 relative for bf16, 2^-11 for f16) and
// so is the output; over K products the input roundings add up like a random walk, ~2^-9 sqrt(2/3)
// relative to the output's norm, well inside 2 x tol_for(dtype) (the extra factor for the rounding
// of the inputs, which tol_for's single output rounding does not count). Attention rounds P and dS
// as well: 4 x tol_for there.
#include <string>

#include "cohort/core/amp.h"
#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

Tol times(Tol t, double k) { return {k * t.rtol, k * t.atol}; }

// Runs f under autocast to dt (a no-op for the CPU inputs) and returns its result in f32, so that
// the CPU's f32 result and the GPU's 16-bit one compare.
template <class F>
std::function<Tensors(const Tensors&)> autocast_f32(DType dt, F f) {
  return [dt, f](const Tensors& in) {
    AutocastGuard guard(DeviceType::cuda, dt);
    return Tensors{f(in).to(DType::f32)};
  };
}

}  // namespace

GPU_CASE(amp, products) {
  for (DType dt : {DType::bf16, DType::f16}) {
    const std::string d = std::string(" ") + dtype_name(dt);
    const Tol tol = times(tol_for(dt), 2);
    ctx.parity("linear + bias" + d, {ctx.randn({8, 16, 64}), ctx.randn({48, 64}) * 0.1, ctx.randn({48})},
               autocast_f32(dt, [](const Tensors& in) { return linear(in[0], in[1], in[2]); }), tol);
    ctx.parity("matmul broadcast" + d, {ctx.randn({3, 1, 5, 32}), ctx.randn({4, 32, 6})},
               autocast_f32(dt, [](const Tensors& in) { return matmul(in[0], in[1]); }), tol);
    ctx.parity("bmm" + d, {ctx.randn({6, 9, 40}), ctx.randn({6, 40, 7})},
               autocast_f32(dt, [](const Tensors& in) { return bmm(in[0], in[1]); }), tol);
    ctx.parity("conv2d + bias" + d, {ctx.randn({2, 8, 10, 10}), ctx.randn({16, 8, 3, 3}) * 0.1, ctx.randn({16})},
               autocast_f32(dt, [](const Tensors& in) { return conv2d(in[0], in[1], in[2], {1, 1, 1, 1}); }), tol);
    ctx.parity("sdpa causal" + d, {ctx.randn({2, 4, 16, 8}), ctx.randn({2, 4, 16, 8}), ctx.randn({2, 4, 16, 8})},
               autocast_f32(dt, [](const Tensors& in) { return scaled_dot_product_attention(in[0], in[1], in[2], true); }),
               times(tol_for(dt), 4));
    ctx.parity("self_attention" + d, {ctx.randn({4, 16, 96})},
               autocast_f32(dt, [](const Tensors& in) { return self_attention(in[0], 4, true); }),
               times(tol_for(dt), 4));
    // A small MLP: linear -> gelu -> linear, elementwise ops in between unchanged.
    ctx.parity("mlp" + d, {ctx.randn({32, 24}), ctx.randn({64, 24}) * 0.2, ctx.randn({64}), ctx.randn({10, 64}) * 0.1},
               autocast_f32(dt, [](const Tensors& in) {
                 return linear(gelu(linear(in[0], in[1], in[2])), in[3]);
               }),
               tol);
  }
}

GPU_CASE(amp, rules) {
  const Tensor w = ctx.randn({12, 20}).to(Device::cuda(0)).requires_grad_();
  const Tensor x = ctx.randn({5, 20}).to(Device::cuda(0));
  Tensor y;
  {
    AutocastGuard guard(DeviceType::cuda, DType::bf16);
    ctx.expect_true("enabled inside the guard", is_autocast_enabled() && autocast_dtype() == DType::bf16);
    y = linear(x, w);
    ctx.expect_true("linear returns bf16", y.dtype() == DType::bf16, dtype_name(y.dtype()));
    ctx.expect_true("elementwise ops unchanged (bf16 + f32 is f32)", (y + x.narrow(1, 0, 12)).dtype() == DType::f32);
    {
      AutocastGuard inner(DeviceType::cuda, DType::f16);
      ctx.expect_true("a nested guard decides", linear(x, w).dtype() == DType::f16);
      AutocastGuard off(DeviceType::cuda, DType::f16, false);
      ctx.expect_true("a disabled guard turns it off", linear(x, w).dtype() == DType::f32);
    }
    ctx.expect_true("the outer guard is back", linear(x, w).dtype() == DType::bf16);
    const Tensor x64 = ctx.randn({5, 20}, DType::f64).to(Device::cuda(0));
    const Tensor w64 = ctx.randn({12, 20}, DType::f64).to(Device::cuda(0));
    ctx.expect_true("f64 is left alone", linear(x64, w64).dtype() == DType::f64);
    const Tensor xc = ctx.randn({5, 20}), wc = ctx.randn({12, 20});
    ctx.expect_true("CPU tensors are left alone", linear(xc, wc).dtype() == DType::f32);
  }
  ctx.expect_true("off after the guard", !is_autocast_enabled() && linear(x, w).dtype() == DType::f32);
  y.to(DType::f32).sum().backward();
  const Tensor g = w.grad();
  ctx.expect_true("the f32 weight gets an f32 gradient on the GPU",
                  g.defined() && g.dtype() == DType::f32 && g.device().is_cuda(),
                  g.defined() ? dtype_name(g.dtype()) : "no gradient");
}

}  // namespace cohort::gpu_check
