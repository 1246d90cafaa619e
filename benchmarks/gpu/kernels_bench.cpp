// Memory-bound kernels against the copy engine's bandwidth: each op's bytes read and written per
// second, next to cudaMemcpy device-to-device of the same bytes (counted read + written, as for
// the ops) and to the memory's nominal bandwidth from the device's clock and bus width.
#include <cuda_runtime_api.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "../core/harness.h"
#include "cohort/core/core.h"
#include "gpu_benches.h"
#include "gpu_harness.h"

namespace cohort::bench {

namespace {

struct MemOp {
  std::string name;
  double bytes;                 // read + written per call
  std::function<void()> run;
};

}  // namespace

void kernels_bench(int64_t mib, const GpuRunOptions& run) {
  const Device dev = Device::cuda(0);
  const cuda::DeviceProperties props = cuda::device_properties(0);
  const int64_t n = mib * (1 << 20) / 4;  // f32 elements per operand
  Generator gen(0);
  const Tensor x = randn({n}, DType::f32, &gen).to(dev);
  const Tensor y = randn({n}, DType::f32, &gen).to(dev);
  const Tensor rows = x.view({n / 1024, 1024});
  const Tensor xh = x.to(DType::bf16), yh = y.to(DType::bf16);
  const Tensor w = ones({1024}, TensorOptions().with_device(dev)), b = zeros({1024}, TensorOptions().with_device(dev));
  Tensor scratch = Tensor::empty({n}, TensorOptions().with_device(dev));
  const double f = 4.0 * static_cast<double>(n);  // bytes of one f32 operand
  const std::vector<MemOp> ops = {
      {"copy (clone)", 2 * f, [&] { (void)x.clone(); }},
      {"add -> new", 3 * f, [&] { (void)add(x, y); }},
      {"add_ in place", 3 * f, [&] { NoGradGuard g; add_(scratch, y); }},
      {"mul by scalar", 2 * f, [&] { (void)(x * 2.5); }},
      {"gelu", 2 * f, [&] { (void)gelu(x); }},
      {"to(bf16)", 1.5 * f, [&] { (void)x.to(DType::bf16); }},
      {"add bf16 -> new", 1.5 * f, [&] { (void)add(xh, yh); }},
      {"gelu bf16", f, [&] { (void)gelu(xh); }},
      {"sum (all)", f, [&] { (void)sum(x); }},
      {"sum dim 0 of (N, 1024)", f, [&] { (void)sum(rows, {0}); }},
      {"sum dim 1 of (N, 1024)", f, [&] { (void)sum(rows, {1}); }},
      {"softmax rows of 1024", 2 * f, [&] { (void)softmax(rows, -1); }},
      {"layer_norm rows of 1024", 2 * f, [&] { (void)layer_norm(rows, {1024}, w, b); }},
  };
  std::printf("# memory-bound kernels on %s, f32 operands of %lld MiB; GB/s counts bytes read + written;\n"
              "# memcpy: cudaMemcpyAsync device to device of the same bytes; nominal: %.0f GB/s from the memory\n"
              "# clock and bus width. Medians of %d alternating runs (CUDA events).\n",
              props.name.c_str(), static_cast<long long>(mib), props.memory_bandwidth / 1e9, run.reps);
  Table table({"op", "op ms", "op GB/s", "memcpy GB/s", "of memcpy", "of nominal"});
  for (const MemOp& op : ops) {
    NoGradGuard no_grad;
    // The copy moves op.bytes / 2 one way (read + write = op.bytes).
    const size_t copy_bytes = static_cast<size_t>(op.bytes / 2);
    Tensor src = Tensor::empty({static_cast<int64_t>(copy_bytes)}, TensorOptions(DType::boolean).with_device(dev));
    Tensor dst = Tensor::empty({static_cast<int64_t>(copy_bytes)}, TensorOptions(DType::boolean).with_device(dev));
    auto memcpy_d2d = [&] {
      cudaMemcpyAsync(dst.raw_data(), src.raw_data(), copy_bytes, cudaMemcpyDeviceToDevice,
                      static_cast<cudaStream_t>(cuda::current_stream(0).handle()));
    };
    const GpuPair p = run_pair_gpu(op.run, memcpy_d2d, run);
    const double op_gbs = op.bytes / (p.a_ms * 1e-3) / 1e9, copy_gbs = op.bytes / (p.b_ms * 1e-3) / 1e9;
    table.add({op.name, format("%.3f", p.a_ms), format("%.0f", op_gbs), format("%.0f", copy_gbs),
               format("%.2f", op_gbs / copy_gbs),
               props.memory_bandwidth > 0 ? format("%.2f", op_gbs * 1e9 / props.memory_bandwidth) : "-"});
  }
  table.print();
}

}  // namespace cohort::bench
