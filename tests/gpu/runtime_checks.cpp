// Runtime plumbing on cuda:0 (no CPU twin to compare with): the caching allocator's numbers,
// empty_cache, out of memory as a DeviceError that leaves the device usable, events, a side
// stream, and pinned blocks reused while asynchronous copies from them are still queued.
#include <string>
#include <vector>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

TensorOptions on_gpu(DType dt = DType::f32) { return TensorOptions(dt).with_device(Device::cuda(0)); }

}  // namespace

GPU_CASE(runtime, allocator) {
  ctx.expect_true("is_available", cuda::is_available() && cuda::unavailable_reason().empty(),
                  cuda::unavailable_reason());
  cuda::synchronize(0);
  cuda::empty_cache();
  const cuda::MemoryStats s0 = cuda::memory_stats(0);
  ctx.expect_true("after empty_cache nothing is cached", s0.reserved == s0.allocated,
                  std::to_string(s0.reserved) + " reserved, " + std::to_string(s0.allocated) + " allocated");
  const size_t bytes = size_t{4} << 20;  // a multiple of the rounding step: counted exactly
  {
    const Tensor a = full({static_cast<int64_t>(bytes / 4)}, 1.0, on_gpu());
    const cuda::MemoryStats s1 = cuda::memory_stats(0);
    ctx.expect_true("allocated counts a live tensor", s1.allocated == s0.allocated + bytes);
    ctx.expect_true("peak >= allocated", s1.peak_allocated >= s1.allocated);
  }
  const cuda::MemoryStats s2 = cuda::memory_stats(0);
  ctx.expect_true("a dead tensor's block is cached", s2.allocated == s0.allocated && s2.reserved >= s0.reserved + bytes);
  {
    const Tensor b = full({static_cast<int64_t>(bytes / 4)}, 2.0, on_gpu());
    ctx.expect_true("the same size again is a cache hit", cuda::memory_stats(0).cache_hits > s2.cache_hits);
    ctx.expect_true("the reused block holds the new values", b.sum().item<double>() == 2.0 * (bytes / 4));
  }
  cuda::empty_cache();
  const cuda::MemoryStats s3 = cuda::memory_stats(0);
  ctx.expect_true("empty_cache returns cached blocks", s3.reserved == s3.allocated);
  // Twice the device's memory: a DeviceError naming out of memory, and the device still works.
  const size_t total = cuda::device_properties(0).total_memory;
  std::string what;
  try {
    const Tensor huge = Tensor::empty({static_cast<int64_t>(total / 2)}, on_gpu());  // 2x total in f32
  } catch (const DeviceError& e) {
    what = e.what();
  }
  ctx.expect_true("out of memory is a DeviceError", what.find("out of memory") != std::string::npos, what);
  ctx.expect_true("the device works after out of memory",
                  arange(10.0, on_gpu()).sum().item<float>() == 45.0f);
}

GPU_CASE(runtime, streams_events_pinned) {
  const int64_t n = 1 << 20;
  const Tensor x = arange(static_cast<double>(n), on_gpu());
  cuda::Event start(true), stop(true);
  start.record(cuda::current_stream(0));
  Tensor y = x * 2.0;
  stop.record(cuda::current_stream(0));
  stop.synchronize();
  ctx.expect_true("events: query after synchronize", stop.query());
  ctx.expect_true("events: elapsed_ms >= 0", stop.elapsed_ms(start) >= 0.0f);
  // Work on a side stream, made visible to the default stream by an event.
  const cuda::Stream side = cuda::Stream::create(0);
  Tensor z;
  cuda::Event done;
  {
    cuda::StreamGuard guard(side);
    ctx.expect_true("StreamGuard makes the stream current", cuda::current_stream(0) == side);
    z = y + 1.0;  // side waits for nothing: y was finished by stop.synchronize()
    done.record(side);
  }
  ctx.expect_true("the default stream is current again", cuda::current_stream(0) == cuda::Stream(0, nullptr));
  done.wait(cuda::current_stream(0));
  const double expect_z = 2.0 * (static_cast<double>(n) * (n - 1) / 2) + n;
  ctx.expect_true("side-stream result seen after wait", z.to(DType::f64).sum().item<double>() == expect_z);
  // Pinned staging blocks released while their non-blocking copies may still be queued: the next
  // pin_memory of that size gets a block only after the copy from it has finished.
  std::vector<Tensor> copies;
  for (int i = 0; i < 8; ++i) {
    const Tensor host = full({n}, static_cast<double>(i)).pin_memory();
    copies.push_back(host.to(Device::cuda(0), /*non_blocking=*/true));
  }
  bool all = true;
  for (int i = 0; i < 8; ++i) all = all && copies[i].to(DType::f64).sum().item<double>() == static_cast<double>(i) * n;
  ctx.expect_true("pinned blocks reused after their copies", all);
}

}  // namespace cohort::gpu_check
