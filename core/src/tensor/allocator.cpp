#include "cohort/core/allocator.h"

#include <sys/mman.h>

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

namespace cohort {

namespace {

constexpr size_t kSmallAlign = 64;
constexpr size_t kCacheFrom = 64 << 10;      // blocks this large are cached
constexpr size_t kHugeFrom = 2 << 20;        // and these are huge-page aligned
constexpr size_t kPage = 4 << 10;

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

struct State {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // capacity -> blocks
  size_t cached = 0;
  size_t limit = size_t{1} << 30;
  AllocatorStats stats;
};

State& state() {
  static State* s = new State;  // never destroyed: tensors may be freed during static destruction
  return *s;
}

void* system_alloc(size_t capacity) {
  const size_t align = capacity >= kHugeFrom ? kHugeFrom : kSmallAlign;
  void* p = nullptr;  // posix_memalign: unlike aligned_alloc, the size need not be a multiple
  if (::posix_memalign(&p, align, capacity) != 0) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
  if (capacity >= kHugeFrom) ::madvise(p, capacity, MADV_HUGEPAGE);
#endif
  return p;
}

}  // namespace

CpuAllocator& CpuAllocator::instance() {
  static CpuAllocator allocator;
  return allocator;
}

void* CpuAllocator::allocate(size_t nbytes, size_t* capacity) {
  State& s = state();
  if (nbytes < kCacheFrom) {
    *capacity = round_up(nbytes > 0 ? nbytes : 1, kSmallAlign);
    void* p = nullptr;
    if (::posix_memalign(&p, kSmallAlign, *capacity) != 0) throw std::bad_alloc();
    std::lock_guard<std::mutex> lock(s.mutex);
    s.stats.allocated += *capacity;
    s.stats.reserved += *capacity;
    if (s.stats.allocated > s.stats.peak_allocated) s.stats.peak_allocated = s.stats.allocated;
    return p;
  }
  *capacity = round_up(nbytes, nbytes >= kHugeFrom ? kHugeFrom / 8 : kPage);
  void* p = nullptr;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    auto it = s.free_blocks.find(*capacity);
    if (it != s.free_blocks.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      s.cached -= *capacity;
      ++s.stats.cache_hits;
    } else {
      ++s.stats.cache_misses;
      s.stats.reserved += *capacity;
    }
    s.stats.allocated += *capacity;
    if (s.stats.allocated > s.stats.peak_allocated) s.stats.peak_allocated = s.stats.allocated;
  }
  if (p == nullptr) {
    try {
      p = system_alloc(*capacity);
    } catch (...) {
      empty_cache();  // give back what is cached and try once more
      p = system_alloc(*capacity);
    }
  }
  return p;
}

void CpuAllocator::release(void* ptr, size_t capacity) {
  State& s = state();
  std::unique_lock<std::mutex> lock(s.mutex);
  s.stats.allocated -= capacity;
  if (capacity >= kCacheFrom && s.cached + capacity <= s.limit) {
    s.free_blocks[capacity].push_back(ptr);
    s.cached += capacity;
    return;
  }
  s.stats.reserved -= capacity;
  lock.unlock();
  std::free(ptr);
}

AllocatorStats CpuAllocator::stats() const {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.stats;
}

void CpuAllocator::reset_peak() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.stats.peak_allocated = s.stats.allocated;
}

void CpuAllocator::empty_cache() {
  State& s = state();
  std::vector<void*> blocks;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (auto& [capacity, list] : s.free_blocks) {
      blocks.insert(blocks.end(), list.begin(), list.end());
      s.stats.reserved -= capacity * list.size();
    }
    s.free_blocks.clear();
    s.cached = 0;
  }
  for (void* p : blocks) std::free(p);
}

void CpuAllocator::set_cache_limit(size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(state().mutex);
    state().limit = bytes;
  }
  if (bytes == 0) empty_cache();
}

}  // namespace cohort
