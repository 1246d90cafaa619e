// Attention on the GPU: the fused (flash) kernels against the unfused path (cuBLAS products and
// row kernels, cuda::set_flash_attention(false)) on the same bf16 tensors, forward alone and
// forward + backward, with the fused kernels' rate in TFLOP/s (the products' flops: 4 B H L S E
// forward, 2.5 times that backward, halved when causal).
#include <cstdio>
#include <string>
#include <vector>

#include "../core/harness.h"
#include "cohort/core/core.h"
#include "gpu_benches.h"

namespace cohort::bench {

void attention_bench(const GpuRunOptions& run) {
  struct Shape4 {
    std::string name;
    int64_t B, H, T, E;
  };
  const std::vector<Shape4> shapes = {{"gpt example", 16, 4, 64, 32},
                                      {"GPT-2 small, batch 16", 16, 12, 512, 64},
                                      {"long context", 4, 12, 2048, 64},
                                      {"head size 128", 8, 16, 1024, 128}};
  const Device dev = Device::cuda(0);
  const cuda::DeviceProperties props = cuda::device_properties(0);
  std::printf("# causal attention on %s, bf16 (B, H, T, E) tensors: flash kernels against the unfused path\n"
              "# (cuBLAS + row kernels); fwd+bwd backpropagates sum(out * w). Medians of %d alternating runs.\n",
              props.name.c_str(), run.reps);
  Table table({"shape", "B", "H", "T", "E", "flash fwd ms", "unfused fwd ms", "fwd speed-up", "flash fwd TFLOP/s",
               "flash f+b ms", "unfused f+b ms", "f+b speed-up", "flash f+b TFLOP/s"});
  Generator gen(0);
  for (const Shape4& s : shapes) {
    auto make = [&] { return randn({s.B, s.H, s.T, s.E}, DType::f32, &gen).to(DType::bf16).to(dev); };
    Tensor q = make(), k = make(), v = make();
    const Tensor w = make();
    auto forward = [&](bool flash) {
      return [&, flash] {
        cuda::set_flash_attention(flash);
        NoGradGuard no_grad;
        (void)scaled_dot_product_attention(q, k, v, true);
      };
    };
    const GpuPair f = run_pair_gpu(forward(true), forward(false), run);
    q.requires_grad_();
    k.requires_grad_();
    v.requires_grad_();
    auto both = [&](bool flash) {
      return [&, flash] {
        cuda::set_flash_attention(flash);
        (scaled_dot_product_attention(q, k, v, true) * w).sum().backward();
      };
    };
    const GpuPair fb = run_pair_gpu(both(true), both(false), run);
    q = q.detach();
    k = k.detach();
    v = v.detach();
    const double fwd_flop = 4.0 * s.B * s.H * s.T * s.T * s.E * 0.5;
    table.add({s.name, format("%lld", (long long)s.B), format("%lld", (long long)s.H), format("%lld", (long long)s.T),
               format("%lld", (long long)s.E), format("%.3f", f.a_ms), format("%.3f", f.b_ms),
               format("%.2f", f.b_ms / f.a_ms), format("%.1f", fwd_flop / (f.a_ms * 1e-3) / 1e12),
               format("%.3f", fb.a_ms), format("%.3f", fb.b_ms), format("%.2f", fb.b_ms / fb.a_ms),
               format("%.1f", 3.5 * fwd_flop / (fb.a_ms * 1e-3) / 1e12)});
  }
  cuda::set_flash_attention(true);
  table.print();
}

}  // namespace cohort::bench
