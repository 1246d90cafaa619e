// The caching allocators of the CUDA backend: device memory (per device and stream) and pinned
// (page-locked) host memory for asynchronous copies.
//
// cudaMalloc and cudaFree are slow (cudaFree synchronises the device), and a training step asks for
// the same sizes every time. So a released block goes on a free list keyed by (device, stream,
// rounded size) and the next request for that size on that stream gets it back. Reuse on the same
// stream is safe without any synchronisation: the stream runs in order, so whatever the new owner
// queues runs after everything the old owner queued. Sizes are rounded to 512 bytes below 1 MiB and
// to 1/8 of their power of two above (at most 12.5% waste), so nearby sizes share blocks. When
// cudaMalloc runs out of memory, every cached block of that device is freed and it is tried again.
#include <cuda_runtime_api.h>

#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "allocator-impl.h"
#include "cohort/core/cuda.h"
#include "cuda-impl.h"

namespace cohort {
namespace detail {

namespace {

constexpr size_t kSmallRound = 512;
constexpr size_t kLargeFrom = size_t{1} << 20;

size_t round_size(size_t n) {
  if (n == 0) n = 1;
  if (n < kLargeFrom) return (n + kSmallRound - 1) / kSmallRound * kSmallRound;
  size_t pow2 = kLargeFrom;
  while (pow2 * 2 <= n) pow2 *= 2;
  const size_t step = pow2 / 8;
  return (n + step - 1) / step * step;
}

struct Block {
  int device = 0;
  cudaStream_t stream = nullptr;
  size_t size = 0;
};

using FreeKey = std::tuple<int, cudaStream_t, size_t>;

struct DeviceState {
  std::mutex mutex;
  std::map<FreeKey, std::vector<void*>> free_blocks;
  std::unordered_map<void*, Block> live;  // allocated blocks, for release()
  std::vector<cuda::MemoryStats> stats;   // per device
};

DeviceState& device_state() {
  static DeviceState* s = new DeviceState;  // never destroyed: tensors may die during static destruction
  return *s;
}

cuda::MemoryStats& stats_for(DeviceState& s, int device) {
  if (static_cast<int>(s.stats.size()) <= device) s.stats.resize(device + 1);
  return s.stats[device];
}

// Frees every cached block of `device` (all devices when -1); the caller holds the mutex.
void free_cached(DeviceState& s, int device) {
  for (auto it = s.free_blocks.begin(); it != s.free_blocks.end();) {
    const int d = std::get<0>(it->first);
    if (device >= 0 && d != device) {
      ++it;
      continue;
    }
    DeviceGuard guard(d);
    for (void* p : it->second) {
      cudaFree(p);
      stats_for(s, d).reserved -= std::get<2>(it->first);
    }
    it = s.free_blocks.erase(it);
  }
}

std::string mib(size_t bytes) { return str_cat(bytes / (1 << 20), " MiB"); }

}  // namespace

void* cuda_allocate(int device, size_t nbytes) {
  DeviceState& s = device_state();
  const size_t size = round_size(nbytes);
  cudaStream_t stream = current_cuda_stream(device);
  std::lock_guard<std::mutex> lock(s.mutex);
  cuda::MemoryStats& st = stats_for(s, device);
  void* p = nullptr;
  auto it = s.free_blocks.find(FreeKey{device, stream, size});
  if (it != s.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    ++st.cache_hits;
  } else {
    DeviceGuard guard(device);
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      free_cached(s, device);
      err = cudaMalloc(&p, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total = 0;
      cudaMemGetInfo(&free_bytes, &total);
      COHORT_THROW(DeviceError, "CUDA out of memory on cuda:", device, ": tried to allocate ", mib(size), "; ",
                   mib(st.allocated), " in live tensors, ", mib(free_bytes), " free of ", mib(total),
                   ". Use a smaller batch, free tensors you no longer need, or shard the model (Fsdp)");
    }
    COHORT_CUDA_CHECK(err);
    ++st.cache_misses;
    st.reserved += size;
  }
  st.allocated += size;
  if (st.allocated > st.peak_allocated) st.peak_allocated = st.allocated;
  s.live[p] = Block{device, stream, size};
  return p;
}

void cuda_release(void* ptr) {
  if (ptr == nullptr) return;
  DeviceState& s = device_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.live.find(ptr);
  if (it == s.live.end()) return;  // not ours
  const Block b = it->second;
  s.live.erase(it);
  stats_for(s, b.device).allocated -= b.size;
  s.free_blocks[FreeKey{b.device, b.stream, b.size}].push_back(ptr);
}

// ---- pinned host memory ----
//
// A pinned block may still be the source or target of an asynchronous copy when its tensor dies.
// So release() records an event on the current stream (where cohort queues its copies) and a later
// allocation that reuses the block waits for that event before handing it to a host writer.

namespace {

struct PinnedBlock {
  void* ptr = nullptr;
  cudaEvent_t done = nullptr;  // recorded at release
};

struct PinnedState {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<PinnedBlock>> free_blocks;
  std::unordered_map<void*, size_t> live;
};

PinnedState& pinned_state() {
  static PinnedState* s = new PinnedState;
  return *s;
}

}  // namespace

void* pinned_allocate(size_t nbytes) {
  PinnedState& s = pinned_state();
  const size_t size = round_size(nbytes);
  PinnedBlock block;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.free_blocks.find(size);
    if (it != s.free_blocks.end() && !it->second.empty()) {
      block = it->second.back();
      it->second.pop_back();
    }
  }
  if (block.ptr == nullptr) {
    COHORT_CUDA_CHECK(cudaHostAlloc(&block.ptr, size, cudaHostAllocPortable));
  } else if (block.done != nullptr) {
    COHORT_CUDA_CHECK(cudaEventSynchronize(block.done));
    cudaEventDestroy(block.done);
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  s.live[block.ptr] = size;
  return block.ptr;
}

void pinned_release(void* ptr) {
  PinnedState& s = pinned_state();
  PinnedBlock block{ptr, nullptr};
  int device = 0;
  if (cudaGetDevice(&device) == cudaSuccess &&
      cudaEventCreateWithFlags(&block.done, cudaEventDisableTiming) == cudaSuccess) {
    cudaEventRecord(block.done, current_cuda_stream(device));
  }
  cudaGetLastError();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.live.find(ptr);
  if (it == s.live.end()) return;
  s.free_blocks[it->second].push_back(block);
  s.live.erase(it);
}

}  // namespace detail

namespace cuda {

MemoryStats memory_stats(int device) {
  check_device_available(Device::cuda(device), "cuda::memory_stats");
  detail::DeviceState& s = detail::device_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return detail::stats_for(s, device);
}

void reset_peak_memory_stats(int device) {
  check_device_available(Device::cuda(device), "cuda::reset_peak_memory_stats");
  detail::DeviceState& s = detail::device_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  MemoryStats& st = detail::stats_for(s, device);
  st.peak_allocated = st.allocated;
}

void empty_cache() {
  if (!is_available()) return;
  detail::DeviceState& s = detail::device_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  detail::free_cached(s, -1);
}

}  // namespace cuda
}  // namespace cohort
