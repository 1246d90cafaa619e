// The CUDA backend's entry points in a build without CUDA. A CUDA tensor cannot be made here
// (check_device_available throws first), so the op entry points are never reached; they throw
// the same DeviceError in case one is.
#include <string>

#include "allocator-impl.h"
#include "cohort/core/cuda.h"
#include "cohort/core/device.h"
#include "cohort/core/error.h"

namespace cohort {

namespace {
constexpr const char* kNoCuda =
    "this cohort was built without CUDA; rebuild with the CUDA toolkit installed (-DCOHORT_WITH_CUDA=ON)";

[[noreturn]] void no_cuda(const char* op) { COHORT_THROW(DeviceError, op, ": ", kNoCuda); }
}  // namespace

void check_device_available(const Device& device, const char* op) {
  if (device.is_cpu()) return;
  COHORT_THROW(DeviceError, op, ": ", device.str(), " was requested, but ", kNoCuda, ", or use Device::cpu()");
}

namespace detail {
void* cuda_allocate(int, size_t) { no_cuda("allocate"); }
void cuda_release(void*) {}
void* pinned_allocate(size_t) { no_cuda("pin_memory"); }
void pinned_release(void*) {}
void pinned_record_use(const void*, int) {}
}  // namespace detail

namespace cuda {
bool is_available() { return false; }
int device_count() { return 0; }
std::string unavailable_reason() { return "no usable GPU: this cohort was built without CUDA"; }
DeviceProperties device_properties(int) { no_cuda("cuda::device_properties"); }
void set_device(int) { no_cuda("cuda::set_device"); }
int current_device() { return -1; }
void synchronize(int) {}
Stream Stream::create(int) { no_cuda("cuda::Stream::create"); }
void Stream::synchronize() const {}
bool Stream::query() const { return true; }
Stream current_stream(int device) { return Stream(device, nullptr); }
StreamGuard::StreamGuard(Stream stream) : previous_(stream) { no_cuda("cuda::StreamGuard"); }
StreamGuard::~StreamGuard() = default;
Event::Event(bool) {}
Event::~Event() = default;
void Event::record(const Stream&) { no_cuda("cuda::Event::record"); }
void Event::wait(const Stream&) const {}
void Event::synchronize() const {}
bool Event::query() const { return true; }
float Event::elapsed_ms(const Event&) const { no_cuda("cuda::Event::elapsed_ms"); }
MemoryStats memory_stats(int) { no_cuda("cuda::memory_stats"); }
void reset_peak_memory_stats(int) { no_cuda("cuda::reset_peak_memory_stats"); }
void empty_cache() {}
void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }
void set_flash_attention(bool) {}
bool flash_attention() { return false; }
}  // namespace cuda

}  // namespace cohort
