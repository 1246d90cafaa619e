// Device parity of the matrix products and attention: matmul in all its shapes (vectors, batched,
// broadcast, the x @ W fold, transposed and strided views), bmm, linear with and without bias,
// scaled_dot_product_attention and self_attention (causal and not, the GPT shape, odd sizes), each
// with its gradients, in every floating dtype.
//
// Tolerances (max |cpu - gpu| <= atol + rtol * max |cpu|, gpu_check.h):
// - Products: tol_for(dtype). f32 and f64 sum in another order than the CPU: for K terms of unit
//   size the difference is about eps * K (a random walk of K roundings of partial sums ~ sqrt(K)),
//   against a bound of 1e-5 * max |out| ~ 1e-5 * 4 sqrt(K): at K = 1024 about 4e-5 against 1.3e-3.
//   bf16 and f16 accumulate in f32 on both devices and round once at the end, so the results differ
//   by at most one rounding of the output (2^-8, 2^-11 relative), inside tol_for's 1.6e-2 and 2e-3.
// - Attention in bf16/f16: twice tol_for, because the GPU rounds P and dS to the 16-bit dtype before
//   the products that follow (cuBLAS needs both factors in one dtype) while the CPU keeps them in
//   f32: one more rounding per factor, 2^-9 (bf16) or 2^-11 (f16) relative.
// - TF32 (cuda::set_allow_tf32): inputs rounded to 10-bit mantissas, 2^-11 relative each, so the
//   product is off by about 2^-11 * sqrt(K) relative to its norm: 5e-3 is ample for K = 256.
#include <cstdlib>
#include <string>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

Tol twice(Tol t) { return {2 * t.rtol, 2 * t.atol}; }

Tensors one(const Tensor& t) { return Tensors{t}; }

}  // namespace

GPU_CASE(linalg, matmul_shapes) {
  struct Shapes {
    const char* what;
    Shape a, b;
  };
  const Shapes cases[] = {
      {"dot (7)x(7)", {7}, {7}},
      {"matvec (5,7)x(7)", {5, 7}, {7}},
      {"vecmat (7)x(7,4)", {7}, {7, 4}},
      {"2d (33,65)x(65,17)", {33, 65}, {65, 17}},
      {"deep (64,1024)x(1024,48)", {64, 1024}, {1024, 48}},
      {"batched (4,9,5)x(4,5,7)", {4, 9, 5}, {4, 5, 7}},
      {"broadcast (3,1,5,8)x(4,8,6)", {3, 1, 5, 8}, {4, 8, 6}},
      {"x@W fold (4,10,16)x(16,12)", {4, 10, 16}, {16, 12}},
      {"W@x (12,16)x(4,16,10)", {12, 16}, {4, 16, 10}},
      {"batched vec (2,3,8)x(8)", {2, 3, 8}, {8}},
      {"one row (4,1,8)x(8,5)", {4, 1, 8}, {8, 5}},
  };
  for (DType dt : kFloats) {
    for (const Shapes& c : cases) {
      ctx.parity(std::string("matmul ") + c.what, {ctx.randn(c.a, dt), ctx.randn(c.b, dt)},
                 [](const Tensors& in) { return one(matmul(in[0], in[1])); }, tol_for(dt));
    }
  }
}

GPU_CASE(linalg, matmul_views) {
  for (DType dt : kFloats) {
    // Transposed operands: cuBLAS reads them with op T, no copy.
    ctx.parity("a^T b^T", {ctx.randn({65, 33}, dt), ctx.randn({17, 65}, dt)},
               [](const Tensors& in) { return one(matmul(in[0].t(), in[1].t())); }, tol_for(dt));
    ctx.parity("batched a^T", {ctx.randn({3, 8, 5}, dt), ctx.randn({3, 8, 6}, dt)},
               [](const Tensors& in) { return one(matmul(in[0].transpose(-1, -2), in[1])); }, tol_for(dt));
    // Heads: (B, H, T, D) views of (B, T, H, D) blocks, batch dims that do not merge.
    ctx.parity("heads q k^T", {ctx.randn({2, 6, 3, 4}, dt), ctx.randn({2, 5, 3, 4}, dt)}, [](const Tensors& in) {
      return one(matmul(in[0].permute({0, 2, 1, 3}), in[1].permute({0, 2, 3, 1})));
    }, tol_for(dt));
    // A column slice with step 2 (no unit stride): copied once, then multiplied.
    ctx.parity("strided columns", {ctx.randn({9, 20}, dt), ctx.randn({10, 4}, dt)},
               [](const Tensors& in) { return one(matmul(in[0].slice(1, 0, 20, 2), in[1])); }, tol_for(dt));
    // A row slice (leading dim larger than the row).
    ctx.parity("row slice", {ctx.randn({9, 20}, dt), ctx.randn({8, 4}, dt)},
               [](const Tensors& in) { return one(matmul(in[0].narrow(1, 3, 8), in[1])); }, tol_for(dt));
  }
  // An empty inner dim is a product of zeros.
  ctx.parity("k = 0", {ctx.randn({3, 0}), ctx.randn({0, 4})}, [](const Tensors& in) { return one(matmul(in[0], in[1])); },
             tol_for(DType::f32), false);
}

GPU_CASE(linalg, bmm_linear) {
  for (DType dt : kFloats) {
    ctx.parity("bmm", {ctx.randn({6, 9, 5}, dt), ctx.randn({6, 5, 7}, dt)},
               [](const Tensors& in) { return one(bmm(in[0], in[1])); }, tol_for(dt));
    ctx.parity("bmm b^T", {ctx.randn({6, 9, 5}, dt), ctx.randn({6, 7, 5}, dt)},
               [](const Tensors& in) { return one(bmm(in[0], in[1].transpose(1, 2))); }, tol_for(dt));
    ctx.parity("linear + bias", {ctx.randn({4, 6, 20}, dt), ctx.randn({12, 20}, dt), ctx.randn({12}, dt)},
               [](const Tensors& in) { return one(linear(in[0], in[1], in[2])); }, tol_for(dt));
    ctx.parity("linear no bias", {ctx.randn({24, 20}, dt), ctx.randn({12, 20}, dt)},
               [](const Tensors& in) { return one(linear(in[0], in[1])); }, tol_for(dt));
    ctx.parity("linear 1-D x", {ctx.randn({20}, dt), ctx.randn({12, 20}, dt), ctx.randn({12}, dt)},
               [](const Tensors& in) { return one(linear(in[0], in[1], in[2])); }, tol_for(dt));
  }
  // A GPT block's shapes: (B*T, C) @ (C, 4C) and back.
  ctx.parity("linear gpt mlp", {ctx.randn({16, 64, 128}), ctx.randn({512, 128}), ctx.randn({512})},
             [](const Tensors& in) { return one(linear(in[0], in[1], in[2])); }, tol_for(DType::f32));
}

GPU_CASE(linalg, tf32_and_streams) {
  cuda::set_allow_tf32(true);
  ctx.parity("matmul f32 with TF32", {ctx.randn({64, 256}), ctx.randn({256, 32})},
             [](const Tensors& in) { return one(matmul(in[0], in[1])); }, Tol{5e-3, 1e-3});
  cuda::set_allow_tf32(false);
  // A product on a side stream rebinds the handle to it (with that stream's own workspace).
  const Tensor a = ctx.randn({40, 30}), b = ctx.randn({30, 20});
  const Tensor ag = a.to(Device::cuda(0)), bg = b.to(Device::cuda(0));
  const cuda::Stream side = cuda::Stream::create(0);  // non-blocking: it does not wait for the copies
  cuda::synchronize(0);
  Tensor on_side;
  {
    cuda::StreamGuard guard(side);
    on_side = matmul(ag, bg);
    side.synchronize();
  }
  ctx.expect_close("matmul on a side stream", matmul(a, b), on_side, tol_for(DType::f32));
  ctx.expect_close("matmul back on the default stream", matmul(a, b), matmul(ag, bg), tol_for(DType::f32));
}

GPU_CASE(attention, sdpa) {
  for (DType dt : kFloats) {
    const Tol tol = dt == DType::bf16 || dt == DType::f16 ? twice(tol_for(dt)) : tol_for(dt);
    for (bool causal : {false, true}) {
      const std::string c = causal ? " causal" : "";
      ctx.parity("sdpa (2,3,9,8)" + c, {ctx.randn({2, 3, 9, 8}, dt), ctx.randn({2, 3, 9, 8}, dt),
                                        ctx.randn({2, 3, 9, 8}, dt)},
                 [causal](const Tensors& in) { return one(scaled_dot_product_attention(in[0], in[1], in[2], causal)); },
                 tol);
      // Odd sizes: L != S (the causal mask is the top-left triangle), E != Ev, one batch dim.
      ctx.parity("sdpa odd L5 S7 E3 Ev6" + c, {ctx.randn({3, 5, 3}, dt), ctx.randn({3, 7, 3}, dt),
                                               ctx.randn({3, 7, 6}, dt)},
                 [causal](const Tensors& in) { return one(scaled_dot_product_attention(in[0], in[1], in[2], causal)); },
                 tol);
      // No batch dims, an explicit scale, more keys than a warp.
      ctx.parity("sdpa 2-D S70 scale 0.3" + c, {ctx.randn({40, 16}, dt), ctx.randn({70, 16}, dt),
                                                ctx.randn({70, 5}, dt)},
                 [causal](const Tensors& in) {
                   return one(scaled_dot_product_attention(in[0], in[1], in[2], causal, 0.3));
                 },
                 tol);
    }
  }
  // The GPT shape, with q, k, v as (B, H, T, D) views of (B, T, H, D) projections.
  for (bool causal : {false, true}) {
    ctx.parity(std::string("sdpa gpt views") + (causal ? " causal" : ""),
               {ctx.randn({16, 64, 4, 32}), ctx.randn({16, 64, 4, 32}), ctx.randn({16, 64, 4, 32})},
               [causal](const Tensors& in) {
                 auto heads = [](const Tensor& t) { return t.permute({0, 2, 1, 3}); };
                 return one(scaled_dot_product_attention(heads(in[0]), heads(in[1]), heads(in[2]), causal));
               },
               tol_for(DType::f32));
  }
}

// The fused (flash) kernels: bf16/f16 with head sizes 32, 64 and 128, lengths that are not
// multiples of the 64-row tiles, L != S (the causal triangle is top-left), batch dims as views of
// (B, T, H, D) projections, and self_attention; then the same inputs through the unfused path
// (cuda::set_flash_attention(false)). Tolerance: three times tol_for. Like the unfused path they
// round P and dS to the 16-bit dtype (twice tol_for, see above); backward's D = rowsum(dO * out)
// also reads the output rounded to it, one rounding more.
GPU_CASE(attention, flash) {
  ctx.expect_true("flash attention on by default", cuda::flash_attention() || std::getenv("COHORT_CUDA_FLASH_ATTENTION"));
  auto thrice = [](Tol t) { return Tol{3 * t.rtol, 3 * t.atol}; };
  struct Case {
    int64_t L, S, E;
  };
  const Case cases[] = {{64, 64, 64}, {100, 130, 64}, {130, 100, 32}, {1, 1, 32}, {200, 200, 128}, {3, 70, 64}};
  for (bool flash : {true, false}) {
    cuda::set_flash_attention(flash);
    const std::string path = flash ? " flash" : " unfused";
    for (DType dt : {DType::bf16, DType::f16}) {
      for (const Case& c : cases) {
        for (bool causal : {false, true}) {
          if (!flash && c.E != 64) continue;  // the unfused path once per shape family is enough
          const std::string what = "sdpa (2,3," + std::to_string(c.L) + "," + std::to_string(c.E) + ") S" +
                                   std::to_string(c.S) + (causal ? " causal" : "") + path;
          ctx.parity(what, {ctx.randn({2, 3, c.L, c.E}, dt), ctx.randn({2, 3, c.S, c.E}, dt),
                            ctx.randn({2, 3, c.S, c.E}, dt)},
                     [causal](const Tensors& in) {
                       return one(scaled_dot_product_attention(in[0], in[1], in[2], causal));
                     },
                     thrice(tol_for(dt)));
        }
      }
      // (B, H, T, D) views of (B, T, H, D) projections, and self_attention's packed qkv.
      ctx.parity("sdpa gpt views (4,96,3,64) causal" + path,
                 {ctx.randn({4, 96, 3, 64}, dt), ctx.randn({4, 96, 3, 64}, dt), ctx.randn({4, 96, 3, 64}, dt)},
                 [](const Tensors& in) {
                   auto heads = [](const Tensor& t) { return t.permute({0, 2, 1, 3}); };
                   return one(scaled_dot_product_attention(heads(in[0]), heads(in[1]), heads(in[2]), true));
                 },
                 thrice(tol_for(dt)));
      ctx.parity("self_attention (2,80,3*128) 2 heads causal" + path, {ctx.randn({2, 80, 384}, dt)},
                 [](const Tensors& in) { return one(self_attention(in[0], 2, true)); }, thrice(tol_for(dt)));
    }
  }
  // Which path ran shows in what forward keeps for backward: the unfused path keeps P, (batch, L, S)
  // floats; the fused one the row log-sum-exp and a copy of the output. So a fused path that
  // silently did not apply fails here.
  const Tensor q = ctx.randn({2, 3, 256, 64}, DType::bf16), k = ctx.randn({2, 3, 256, 64}, DType::bf16);
  const size_t probs_bytes = size_t{2} * 3 * 256 * 256 * 4;
  for (bool flash : {true, false}) {
    cuda::set_flash_attention(flash);
    const Tensor qg = q.to(Device::cuda(0)).requires_grad_(), kg = k.to(Device::cuda(0)).requires_grad_();
    cuda::synchronize(0);
    const size_t before = cuda::memory_stats(0).allocated;
    const Tensor out = scaled_dot_product_attention(qg, kg, kg, true);
    const size_t kept = cuda::memory_stats(0).allocated - before;  // out and what backward needs
    ctx.expect_true(flash ? "flash forward keeps no P" : "unfused forward keeps P",
                    flash ? kept < probs_bytes / 2 : kept >= probs_bytes,
                    std::to_string(kept) + " bytes kept, P would be " + std::to_string(probs_bytes));
  }
  cuda::set_flash_attention(true);
}

GPU_CASE(attention, self_attention) {
  for (DType dt : kFloats) {
    const Tol tol = dt == DType::bf16 || dt == DType::f16 ? twice(tol_for(dt)) : tol_for(dt);
    for (bool causal : {false, true}) {
      const std::string c = causal ? " causal" : "";
      // The GPT shape: B = 16, 4 heads, T = 64, head dim 32.
      ctx.parity("gpt (16,64,384) 4 heads" + c, {ctx.randn({16, 64, 384}, dt)},
                 [causal](const Tensors& in) { return one(self_attention(in[0], 4, causal)); }, tol);
      ctx.parity("odd (3,7,30) 5 heads" + c, {ctx.randn({3, 7, 30}, dt)},
                 [causal](const Tensors& in) { return one(self_attention(in[0], 5, causal)); }, tol);
    }
  }
}

}  // namespace cohort::gpu_check
