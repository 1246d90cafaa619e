// Device parity of the row-wise normalisations: softmax and log_softmax along any dim, cross_entropy
// with every option the CPU has (mean / sum / none, ignore_index outside and inside [0, C), spatial
// and unbatched targets, i32 targets), layer_norm with and without affine parameters (also f32
// parameters on bf16 activations), each with its gradients, in every floating dtype.
//
// Row lengths 1, 7, 33, 1000 take the lanes-per-row path of the kernels, 4097 and 50257 a block
// per row; a dim other than the last takes the column path. The kernels compute in the CPU's
// computing type (float, or double for f64), so tol_for(dtype) applies; only the order of the
// additions differs.
#include <cmath>
#include <string>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

std::string shape_name(const Shape& s) { return shape_str(s); }

// Class indices in [0, C) with every `every`-th one replaced by `ignore`.
Tensor targets(Context& ctx, int64_t C, const Shape& shape, int64_t every = 0, int64_t ignore = -100) {
  Tensor t = ctx.randint(0, C, shape);
  if (every > 0) {
    Tensor flat = t.reshape({-1});
    for (int64_t i = 0; i < flat.numel(); i += every) flat.narrow(0, i, 1).fill_(static_cast<double>(ignore));
  }
  return t;
}

}  // namespace

GPU_CASE(norm, softmax) {
  for (DType dt : kFloats) {
    const Tol tol = tol_for(dt);
    for (bool log : {false, true}) {
      const std::string op = log ? "log_softmax" : "softmax";
      auto along = [log](int64_t dim) {
        return [log, dim](const Tensors& in) { return Tensors{log ? log_softmax(in[0], dim) : softmax(in[0], dim)}; };
      };
      // The last dim: lanes per row (1, 7, 33, 1000), a block per row (4097, 50257).
      for (const Shape& s : {Shape{64, 1}, Shape{300, 7}, Shape{33, 33}, Shape{20, 1000}, Shape{8, 4097},
                             Shape{3, 50257}}) {
        ctx.parity(op + "(-1) " + shape_name(s), {ctx.randn(s, dt)}, along(-1), tol);
      }
      // Other dims: the column kernel (inner 7, 33, 1000), and a transposed input.
      ctx.parity(op + "(0) (1000, 7)", {ctx.randn({1000, 7}, dt)}, along(0), tol);
      ctx.parity(op + "(1) (4, 33, 17)", {ctx.randn({4, 33, 17}, dt)}, along(1), tol);
      ctx.parity(op + "(0) (33, 1000)", {ctx.randn({33, 1000}, dt)}, along(0), tol);
      ctx.parity(op + "(1) of a transpose", {ctx.randn({100, 33}, dt)},
                 [log](const Tensors& in) {
                   const Tensor x = in[0].t();
                   return Tensors{log ? log_softmax(x, 1) : softmax(x, 1)};
                 },
                 tol);
      ctx.parity(op + " 0-dim", {ctx.randn({}, dt)}, along(0), tol);
      // Large logits stay finite (the row max is subtracted).
      ctx.parity(op + " large logits", {ctx.randn({16, 1000}, dt) * 1000.0}, along(-1), tol);
    }
    // Masked attention: -inf entries get 0, and a fully masked row is NaN on both devices.
    ctx.parity("softmax masked", {ctx.randn({64, 33}, dt), ctx.randn({64, 33})},
               [](const Tensors& in) {
                 return Tensors{softmax(masked_fill(in[0], lt(in[1].detach(), -0.5), -INFINITY), -1)};
               },
               tol);
    ctx.parity("softmax fully masked row", {ctx.randn({4, 2000}, dt)},
               [](const Tensors& in) {
                 Tensor x = in[0].detach().clone();
                 x.narrow(0, 1, 1).fill_(-INFINITY);
                 return Tensors{softmax(x, -1), softmax(x.t(), 0)};
               },
               tol, false);
  }
}

GPU_CASE(norm, cross_entropy) {
  for (DType dt : kFloats) {
    const Tol tol = tol_for(dt);
    for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
      const std::string r = red == Reduction::mean ? " mean" : (red == Reduction::sum ? " sum" : " none");
      const CrossEntropyOptions opt{-100, red};
      auto ce = [opt](const Tensors& in) { return Tensors{cross_entropy(in[0], in[1], opt)}; };
      for (const Shape& s : {Shape{64, 1}, Shape{64, 10}, Shape{7, 1000}, Shape{33, 4097}, Shape{4, 50257}}) {
        ctx.parity("(N, C) " + shape_name(s) + r, {ctx.randn(s, dt), targets(ctx, s[1], {s[0]})}, ce, tol);
      }
      // Ignored targets, also an ignore_index inside [0, C).
      ctx.parity("ignore -100" + r, {ctx.randn({100, 33}, dt), targets(ctx, 33, {100}, 3)}, ce, tol);
      const CrossEntropyOptions opt0{0, red};
      ctx.parity("ignore class 0" + r, {ctx.randn({100, 5}, dt), targets(ctx, 5, {100})},
                 [opt0](const Tensors& in) { return Tensors{cross_entropy(in[0], in[1], opt0)}; }, tol);
      // Spatial targets (N, C, d1, d2) and a non-contiguous (transposed) logits tensor.
      ctx.parity("spatial (2, 5, 3, 7)" + r, {ctx.randn({2, 5, 3, 7}, dt), targets(ctx, 5, {2, 3, 7}, 4)}, ce, tol);
      ctx.parity("spatial (3, 1000, 40)" + r, {ctx.randn({3, 1000, 40}, dt), targets(ctx, 1000, {3, 40})}, ce, tol);
      ctx.parity("transposed logits" + r, {ctx.randn({10, 64}, dt), targets(ctx, 10, {64})},
                 [opt](const Tensors& in) { return Tensors{cross_entropy(in[0].t(), in[1], opt)}; }, tol);
      // Unbatched: (C) logits and a 0-dim target.
      ctx.parity("unbatched" + r, {ctx.randn({1000}, dt), targets(ctx, 1000, {})}, ce, tol);
    }
    // i32 targets, and every target ignored (mean NaN, gradient zero).
    ctx.parity("i32 targets", {ctx.randn({50, 7}, dt), targets(ctx, 7, {50}).to(DType::i32)},
               [](const Tensors& in) { return Tensors{cross_entropy(in[0], in[1])}; }, tol);
    ctx.parity("all ignored", {ctx.randn({6, 7}, dt), targets(ctx, 7, {6}, 1)},
               [](const Tensors& in) { return Tensors{cross_entropy(in[0], in[1])}; }, tol);
  }
  // A bad target is the CPU's IndexError on the GPU too (checked before any kernel runs).
  bool threw = false;
  try {
    cross_entropy(zeros({2, 3}, TensorOptions().with_device(Device::cuda(0))),
                  from_vector<int64_t>({0, 5}).to(Device::cuda(0)));
  } catch (const IndexError& e) {
    threw = std::string(e.what()).find("target 5") != std::string::npos;
  }
  ctx.expect_true("bad target throws IndexError", threw);
}

GPU_CASE(norm, layer_norm) {
  for (DType dt : kFloats) {
    const Tol tol = tol_for(dt);
    for (const Shape& s : {Shape{37, 7}, Shape{33, 33}, Shape{16, 1000}, Shape{8, 4097}, Shape{2, 20000}}) {
      const int64_t M = s[1];
      // Affine, and without parameters.
      ctx.parity("affine " + shape_name(s), {ctx.randn(s, dt), ctx.randn({M}, dt), ctx.randn({M}, dt)},
                 [M](const Tensors& in) { return Tensors{layer_norm(in[0], {M}, in[1], in[2])}; }, tol);
      ctx.parity("plain " + shape_name(s), {ctx.randn(s, dt)},
                 [M](const Tensors& in) { return Tensors{layer_norm(in[0], {M})}; }, tol);
    }
    // One element per row: y is the bias exactly. Forward only: the input gradient is 0 in exact
    // arithmetic, and what the CPU computes is rounding noise (g * w - mean(g * w), contracted to
    // an FMA) times 1 / sqrt(eps), which no tolerance relative to it can compare.
    ctx.parity("affine (64, 1)", {ctx.randn({64, 1}, dt), ctx.randn({1}, dt), ctx.randn({1}, dt)},
               [](const Tensors& in) { return Tensors{layer_norm(in[0], {1}, in[1], in[2])}; }, tol, false);
    // Several rows per column tile and many rows (the weight and bias gradients split into chunks).
    ctx.parity("affine (4096, 33)", {ctx.randn({4096, 33}, dt), ctx.randn({33}, dt), ctx.randn({33}, dt)},
               [](const Tensors& in) { return Tensors{layer_norm(in[0], {33}, in[1], in[2])}; }, tol);
    ctx.parity("affine (8192, 768)", {ctx.randn({8192, 768}, dt), ctx.randn({768}, dt), ctx.randn({768}, dt)},
               [](const Tensors& in) { return Tensors{layer_norm(in[0], {768}, in[1], in[2])}; }, tol);
    // Two normalized dims, weight only, bias only, a transposed input.
    ctx.parity("(4, 6, 33) over (6, 33)", {ctx.randn({4, 6, 33}, dt), ctx.randn({6, 33}, dt)},
               [](const Tensors& in) { return Tensors{layer_norm(in[0], {6, 33}, in[1])}; }, tol);
    ctx.parity("bias only", {ctx.randn({20, 50}, dt), ctx.randn({50}, dt)},
               [](const Tensors& in) { return Tensors{layer_norm(in[0], {50}, Tensor(), in[1])}; }, tol);
    ctx.parity("transposed input", {ctx.randn({50, 20}, dt), ctx.randn({50}, dt), ctx.randn({50}, dt)},
               [](const Tensors& in) { return Tensors{layer_norm(in[0].t(), {50}, in[1], in[2], 1e-3)}; }, tol);
  }
  // 16-bit activations with f32 parameters (each gradient in its own dtype).
  ctx.parity("bf16 x, f32 params", {ctx.randn({64, 1000}, DType::bf16), ctx.randn({1000}), ctx.randn({1000})},
             [](const Tensors& in) { return Tensors{layer_norm(in[0], {1000}, in[1], in[2])}; },
             tol_for(DType::bf16));
  // Rows with a large mean: both devices use a cancellation-free variance. In double, where the
  // CPU's own rounding is far below the tolerance.
  ctx.parity("large mean f64", {ctx.randn({16, 4097}, DType::f64) + 1e4},
             [](const Tensors& in) { return Tensors{layer_norm(in[0], {4097})}; }, tol_for(DType::f64));
}

}  // namespace cohort::gpu_check
