#include "cohort/core/storage.h"

#include "cohort/core/allocator.h"
#include "cohort/core/error.h"

namespace cohort {

StorageImpl::StorageImpl(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  check_device_available(device, "allocate");
  data_ = CpuAllocator::instance().allocate(nbytes, &capacity_);
}

StorageImpl::StorageImpl(void* data, size_t nbytes, Device device, void (*deleter)(void*))
    : data_(data), nbytes_(nbytes), device_(device), deleter_(deleter) {}

StorageImpl::~StorageImpl() {
  if (deleter_ != nullptr) {
    deleter_(data_);
  } else if (capacity_ > 0) {
    CpuAllocator::instance().release(data_, capacity_);
  }
}

}  // namespace cohort
