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
#include <optional>
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
  if (n > (size_t{1} << 62)) return n;  // absurd (a bad shape): cudaMalloc refuses it; rounding would wrap
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
    // A cached block may still be in use by kernels queued before its tensor died (on any stream
    // of the device): let them finish rather than rely on cudaFree's implicit synchronisation.
    if (!it->second.empty()) cudaDeviceSynchronize();
    for (void* p : it->second) {
      cudaFree(p);
      stats_for(s, d).reserved -= std::get<2>(it->first);
    }
    it = s.free_blocks.erase(it);
  }
  cudaGetLastError();  // errors of the ignored calls above are not the next call's
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
// Each asynchronous copy that uses a block records an event on its stream (pinned_record_use, from
// transfer.cpp); a block taken off the free list waits for those events before a host writer gets
// it.

namespace {

struct PinnedBlock {
  size_t size = 0;
  std::vector<cudaEvent_t> uses;  // asynchronous copies that read or write the block
};

struct PinnedState {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<std::pair<char*, std::vector<cudaEvent_t>>>> free_blocks;
  std::map<char*, PinnedBlock> live;  // ordered: a view's pointer finds its block
};

PinnedState& pinned_state() {
  static PinnedState* s = new PinnedState;
  return *s;
}

}  // namespace

void* pinned_allocate(size_t nbytes) {
  PinnedState& s = pinned_state();
  // The calls below need a context: on the process's device, not CUDA's default cuda:0.
  std::optional<DeviceGuard> guard;
  if (const int device = host_call_device(); device >= 0) guard.emplace(device);
  const size_t size = round_size(nbytes);
  char* p = nullptr;
  std::vector<cudaEvent_t> uses;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.free_blocks.find(size);
    if (it != s.free_blocks.end() && !it->second.empty()) {
      p = it->second.back().first;
      uses = std::move(it->second.back().second);
      it->second.pop_back();
    }
  }
  if (p == nullptr) {
    void* raw = nullptr;
    COHORT_CUDA_CHECK(cudaHostAlloc(&raw, size, cudaHostAllocPortable));
    p = static_cast<char*>(raw);
  }
  for (cudaEvent_t e : uses) {
    const cudaError_t err = cudaEventSynchronize(e);
    cudaEventDestroy(e);
    COHORT_CUDA_CHECK(err);
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  s.live[p] = PinnedBlock{size, {}};
  return p;
}

void pinned_record_use(const void* ptr, int device) {
  PinnedState& s = pinned_state();
  cudaEvent_t e = nullptr;
  {
    DeviceGuard guard(device);
    COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    COHORT_CUDA_CHECK(cudaEventRecord(e, current_cuda_stream(device)));
  }
  std::lock_guard<std::mutex> lock(s.mutex);
  const char* c = static_cast<const char*>(ptr);
  auto it = s.live.upper_bound(const_cast<char*>(c));
  if (it != s.live.begin()) {
    --it;
    if (c < it->first + it->second.size) {
      // Drop the uses that are already done, so a long-lived staging buffer keeps a short list.
      std::vector<cudaEvent_t>& uses = it->second.uses;
      for (size_t i = 0; i < uses.size();) {
        if (cudaEventQuery(uses[i]) == cudaSuccess) {
          cudaEventDestroy(uses[i]);
          uses[i] = uses.back();
          uses.pop_back();
        } else {
          ++i;
        }
      }
      cudaGetLastError();  // a cudaErrorNotReady from the queries is not an error
      uses.push_back(e);
      return;
    }
  }
  cudaEventDestroy(e);  // not a block of ours: nothing will reuse it
}

void pinned_release(void* ptr) {
  PinnedState& s = pinned_state();
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.live.find(static_cast<char*>(ptr));
  if (it == s.live.end()) return;
  s.free_blocks[it->second.size].emplace_back(it->first, std::move(it->second.uses));
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
