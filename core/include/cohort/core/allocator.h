// The CPU allocator behind every tensor's storage.
//
// A training step allocates the same sizes every time (activations, gradients, temporaries), and
// a fresh large allocation costs a page fault per 4 KiB page on first touch — more than the
// arithmetic for an elementwise op. So blocks of 64 KiB and more are kept on free lists keyed by
// their size when released and handed out again for the same size; blocks of 2 MiB and more are
// 2 MiB aligned and advised as transparent huge pages. Smaller blocks go to malloc, which caches
// them well. The cache is bounded (set_cache_limit); empty_cache() returns it all.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cohort {

struct AllocatorStats {
  size_t allocated = 0;       // bytes in live tensors' storage
  size_t reserved = 0;        // allocated + cached (what the process holds for tensors)
  size_t peak_allocated = 0;  // most bytes live at once
  uint64_t cache_hits = 0, cache_misses = 0;
};

class CpuAllocator {
 public:
  static CpuAllocator& instance();
  // Returns at least nbytes, 64-byte aligned; *capacity gets the size to pass to release().
  void* allocate(size_t nbytes, size_t* capacity);
  void release(void* ptr, size_t capacity);
  AllocatorStats stats() const;
  void reset_peak();
  void empty_cache();
  void set_cache_limit(size_t bytes);  // default 1 GiB
};

}  // namespace cohort
