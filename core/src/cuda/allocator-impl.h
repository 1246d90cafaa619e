// The CUDA backend's allocators, as Storage uses them (implementation-only header). Declared
// without CUDA types, so storage.cpp compiles in every build; in a build without CUDA they throw.
#pragma once

#include <cstddef>

namespace cohort::detail {

// At least nbytes of device memory on `device`, for use on that device's current stream.
void* cuda_allocate(int device, size_t nbytes);
// Returns a block from cuda_allocate to the cache (the device may still be using it on its stream).
void cuda_release(void* ptr);

// Page-locked host memory (cudaHostAlloc), cached by size.
void* pinned_allocate(size_t nbytes);
void pinned_release(void* ptr);
// An asynchronous copy queued on `device`'s current stream reads or writes the pinned block that
// holds `ptr`: the block is not handed out again before that copy is done.
void pinned_record_use(const void* ptr, int device);

}  // namespace cohort::detail
