// Storage: one allocation shared by a tensor and all of its views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cohort/core/device.h"

namespace cohort {

class StorageImpl {
 public:
  // Allocates nbytes (64-byte aligned, uninitialised) on `device`, from CpuAllocator.
  StorageImpl(size_t nbytes, Device device);
  // Wraps memory owned elsewhere; `deleter` (may be empty) runs when the storage dies.
  StorageImpl(void* data, size_t nbytes, Device device, void (*deleter)(void*));
  ~StorageImpl();
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  const Device& device() const { return device_; }

  // Bumped by every in-place write, so autograd can tell a saved tensor was overwritten.
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  void (*deleter_)(void*) = nullptr;  // memory owned elsewhere
  size_t capacity_ = 0;                // memory from CpuAllocator: the size to give back
  uint64_t version_ = 0;
};

using Storage = std::shared_ptr<StorageImpl>;

}  // namespace cohort
