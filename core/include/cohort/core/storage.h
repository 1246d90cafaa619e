// Storage: one allocation shared by a tensor and all of its views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cohort/core/device.h"

namespace cohort {

class StorageImpl {
 public:
  // Allocates nbytes (uninitialised) on `device`: from CpuAllocator (64-byte aligned) on the CPU,
  // from the caching device allocator on a CUDA device, or, with pinned = true (CPU only, CUDA
  // builds only), page-locked host memory that copies to and from a GPU can use asynchronously.
  StorageImpl(size_t nbytes, Device device, bool pinned = false);
  // Wraps memory owned elsewhere; `deleter` (may be empty) runs when the storage dies.
  StorageImpl(void* data, size_t nbytes, Device device, void (*deleter)(void*));
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  const Device& device() const { return device_; }
  bool is_pinned() const { return pinned_; }

  // Bumped by every in-place write, so autograd can tell a saved tensor was overwritten.
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  void (*deleter_)(void*) = nullptr;  // memory owned elsewhere
  size_t capacity_ = 0;                // memory from CpuAllocator: the size to give back
  bool pinned_ = false;                // page-locked host memory from the CUDA backend
  uint64_t version_ = 0;
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace cohort
