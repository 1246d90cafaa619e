#include "cohort/core/storage.h"

#include <cstdlib>
#include <new>

#include "cohort/core/error.h"

namespace cohort {

namespace {
constexpr size_t kAlignment = 64;  // a cache line, and what AVX-512 loads like
}

StorageImpl::StorageImpl(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  check_device_available(device, "allocate");
  const size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  data_ = std::aligned_alloc(kAlignment, rounded > 0 ? rounded : kAlignment);
  if (data_ == nullptr) throw std::bad_alloc();
  deleter_ = std::free;
}

StorageImpl::StorageImpl(void* data, size_t nbytes, Device device, void (*deleter)(void*))
    : data_(data), nbytes_(nbytes), device_(device), deleter_(deleter) {}

StorageImpl::~StorageImpl() {
  if (deleter_ != nullptr) deleter_(data_);
}

}  // namespace cohort
