#include "cohort/core/storage.h"

#include "../cuda/allocator-impl.h"
#include "cohort/core/allocator.h"
#include "cohort/core/error.h"

namespace cohort {

StorageImpl::StorageImpl(size_t nbytes, Device device, bool pinned)
    : nbytes_(nbytes), device_(device), pinned_(pinned) {
  check_device_available(device, "allocate");
  if (device.is_cuda()) {
    data_ = detail::cuda_allocate(device.index, nbytes);
  } else if (pinned) {
    data_ = detail::pinned_allocate(nbytes);
  } else {
    data_ = CpuAllocator::instance().allocate(nbytes, &capacity_);
  }
}

StorageImpl::StorageImpl(void* data, size_t nbytes, Device device, void (*deleter)(void*))
    : data_(data), nbytes_(nbytes), device_(device), deleter_(deleter) {}

StorageImpl::~StorageImpl() {
  if (deleter_ != nullptr) {
    deleter_(data_);
  } else if (device_.is_cuda()) {
    detail::cuda_release(data_);
  } else if (pinned_) {
    detail::pinned_release(data_);
  } else if (capacity_ > 0) {
    CpuAllocator::instance().release(data_, capacity_);
  }
}

}  // namespace cohort
