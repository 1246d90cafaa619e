// Devices, streams and events through the CUDA runtime (cudart; never the driver library).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/core/cuda.h"
#include "cuda-impl.h"

namespace cohort {

namespace detail {

void cuda_fail(cudaError_t err, const char* what, const char* file, int line) {
  cudaGetLastError();  // clear a sticky-free error so the next call does not report it again
  std::string hint;
  if (err == cudaErrorMemoryAllocation) {
    hint = "; the device is out of memory: use a smaller batch, free tensors, or cuda::empty_cache()";
  } else if (err == cudaErrorInsufficientDriver || err == cudaErrorNoDevice) {
    hint = "; no usable GPU here: run on a node with one, or keep the tensors on Device::cpu()";
  } else if (err == cudaErrorInvalidDevice) {
    hint = "; the device index is beyond cuda::device_count()";
  } else if (err == cudaErrorNoKernelImageForDevice) {
    hint = "; this cohort was built for other GPU architectures: reconfigure with "
           "-DCMAKE_CUDA_ARCHITECTURES=<this GPU's, e.g. 90 for Hopper>";
  }
  throw DeviceError(str_cat("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") in ", what, hint),
                    file, line);
}

namespace {

struct DeviceCount {
  int count = 0;
  std::string reason;
};

const DeviceCount& probe() {
  static const DeviceCount probed = [] {
    DeviceCount d;
    // Without a driver this fails (cudaErrorInsufficientDriver) and leaves the count alone.
    const cudaError_t err = cudaGetDeviceCount(&d.count);
    if (err != cudaSuccess) {
      cudaGetLastError();
      d.count = 0;
      d.reason = str_cat("no usable GPU: cudaGetDeviceCount failed with ", cudaGetErrorName(err), " (",
                         cudaGetErrorString(err), ")");
    } else if (d.count == 0) {
      d.reason = "no usable GPU: the CUDA runtime found 0 devices";
    }
    return d;
  }();
  return probed;
}

// The calling thread's current stream per device; null means the device's legacy default stream.
std::vector<void*>& thread_streams() {
  thread_local std::vector<void*> streams;
  return streams;
}

std::atomic<bool> g_allow_tf32{false};

}  // namespace

// The device cohort last made current on this thread (-1: none yet). A guard restores the previous
// device only if cohort had chosen it: restoring CUDA's implicit device 0 would create a context
// (hundreds of MiB) on GPU 0 in every process of a node whose ranks use cuda:1, cuda:2, ...
thread_local int t_selected = -1;
// The device of the last cuda::set_device on any thread (-1: none), for threads that never chose one.
std::atomic<int> g_set_device{-1};

DeviceGuard::DeviceGuard(int device) {
  int current = 0;
  COHORT_CUDA_CHECK(cudaGetDevice(&current));
  if (current != device) {
    COHORT_CUDA_CHECK(cudaSetDevice(device));
    if (t_selected >= 0) previous_ = current;
  }
  saved_selected_ = t_selected;
  t_selected = device;
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) {
    cudaSetDevice(previous_);
    t_selected = saved_selected_;
  }
}

int host_call_device() { return t_selected >= 0 ? t_selected : g_set_device.load(std::memory_order_relaxed); }

cudaStream_t current_cuda_stream(int device) { return static_cast<cudaStream_t>(cuda::current_stream(device).handle()); }

void check_same_cuda_device(const char* op, const Device& device, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    if (t == nullptr || !t->defined()) continue;
    COHORT_CHECK(t->device() == device, DeviceError, op, ": expected every tensor on ", device.str(),
                 ", got one on ", t->device().str(), "; move it with .to(", device.str(), ") first");
  }
}

int64_t grid_blocks(int64_t n, int threads_per_block) {
  // 132 multiprocessors (H100) x 16 resident blocks of 128 threads, rounded up: beyond that a
  // grid-stride loop gains nothing, and small launches stay small.
  constexpr int64_t kMaxBlocks = 65536;
  return std::max<int64_t>(1, std::min<int64_t>((n + threads_per_block - 1) / threads_per_block, kMaxBlocks));
}

bool tf32_allowed() { return g_allow_tf32.load(std::memory_order_relaxed); }

}  // namespace detail

void check_device_available(const Device& device, const char* op) {
  if (device.is_cpu()) return;
  const detail::DeviceCount& d = detail::probe();
  COHORT_CHECK(d.count > 0, DeviceError, op, ": ", device.str(), " was requested, but there is ", d.reason,
               ". Run on a node with a GPU (and its driver), or keep the tensors on Device::cpu()");
  COHORT_CHECK(device.index >= 0 && device.index < d.count, DeviceError, op, ": ", device.str(),
               " was requested, but this machine has ", d.count, " GPU(s) (cuda:0 to cuda:", d.count - 1, ")");
}

namespace cuda {

bool is_available() { return detail::probe().count > 0; }
int device_count() { return detail::probe().count; }
std::string unavailable_reason() { return detail::probe().reason; }

DeviceProperties device_properties(int device) {
  check_device_available(Device::cuda(device), "cuda::device_properties");
  cudaDeviceProp p{};
  COHORT_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  DeviceProperties out;
  out.name = p.name;
  out.major = p.major;
  out.minor = p.minor;
  out.multiprocessors = p.multiProcessorCount;
  out.total_memory = p.totalGlobalMem;
  out.l2_cache = static_cast<size_t>(p.l2CacheSize);
  int clock_khz = 0, bus_bits = 0;
  if (cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, device) == cudaSuccess &&
      cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device) == cudaSuccess) {
    out.memory_bandwidth = 2.0 * clock_khz * 1e3 * bus_bits / 8.0;  // double data rate
  }
  cudaGetLastError();
  return out;
}

void set_device(int device) {
  check_device_available(Device::cuda(device), "cuda::set_device");
  COHORT_CUDA_CHECK(cudaSetDevice(device));
  detail::t_selected = device;
  detail::g_set_device.store(device, std::memory_order_relaxed);
}

int current_device() {
  if (!is_available()) return -1;
  int d = 0;
  COHORT_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void synchronize(int device) {
  const int n = device_count();
  for (int d = 0; d < n; ++d) {
    if (device >= 0 && d != device) continue;
    detail::DeviceGuard guard(d);
    COHORT_CUDA_CHECK(cudaDeviceSynchronize());
  }
}

Stream Stream::create(int device) {
  check_device_available(Device::cuda(device), "cuda::Stream::create");
  detail::DeviceGuard guard(device);
  cudaStream_t s = nullptr;
  COHORT_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(device, s);
}

void Stream::synchronize() const {
  detail::DeviceGuard guard(device_);
  COHORT_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(handle_)));
}

bool Stream::query() const {
  detail::DeviceGuard guard(device_);
  const cudaError_t err = cudaStreamQuery(static_cast<cudaStream_t>(handle_));
  if (err == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  COHORT_CUDA_CHECK(err);
  return true;
}

Stream current_stream(int device) {
  std::vector<void*>& streams = detail::thread_streams();
  void* h = device >= 0 && device < static_cast<int>(streams.size()) ? streams[device] : nullptr;
  return Stream(device, h);
}

StreamGuard::StreamGuard(Stream stream) : previous_(current_stream(stream.device())) {
  std::vector<void*>& streams = detail::thread_streams();
  if (static_cast<int>(streams.size()) <= stream.device()) streams.resize(stream.device() + 1, nullptr);
  streams[stream.device()] = stream.handle();
}

StreamGuard::~StreamGuard() { detail::thread_streams()[previous_.device()] = previous_.handle(); }

Event::Event(bool timing) : device_(timing ? -2 : -1) {}  // created on its first record()

Event::~Event() {
  if (event_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(event_));
}

void Event::record(const Stream& stream) {
  detail::DeviceGuard guard(stream.device());
  if (event_ == nullptr) {
    cudaEvent_t e = nullptr;
    COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&e, device_ == -2 ? cudaEventDefault : cudaEventDisableTiming));
    event_ = e;
    device_ = stream.device();
  }
  COHORT_CHECK(device_ == stream.device(), DeviceError, "cuda::Event::record: the event belongs to cuda:", device_,
               " but the stream to cuda:", stream.device());
  COHORT_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event_), static_cast<cudaStream_t>(stream.handle())));
}

void Event::wait(const Stream& stream) const {
  if (event_ == nullptr) return;  // never recorded: nothing to wait for
  detail::DeviceGuard guard(stream.device());
  COHORT_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(stream.handle()), static_cast<cudaEvent_t>(event_), 0));
}

void Event::synchronize() const {
  if (event_ != nullptr) COHORT_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event_)));
}

bool Event::query() const {
  if (event_ == nullptr) return true;
  const cudaError_t err = cudaEventQuery(static_cast<cudaEvent_t>(event_));
  if (err == cudaErrorNotReady) {
    cudaGetLastError();
    return false;
  }
  COHORT_CUDA_CHECK(err);
  return true;
}

float Event::elapsed_ms(const Event& start) const {
  COHORT_CHECK(event_ != nullptr && start.event_ != nullptr, ValueError,
               "cuda::Event::elapsed_ms: both events must have been recorded (with timing = true)");
  float ms = 0;
  COHORT_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.event_), static_cast<cudaEvent_t>(event_)));
  return ms;
}

void set_allow_tf32(bool allow) { detail::g_allow_tf32.store(allow, std::memory_order_relaxed); }
bool allow_tf32() { return detail::tf32_allowed(); }

namespace {
std::atomic<bool>& flash_attention_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("COHORT_CUDA_FLASH_ATTENTION");
    return v == nullptr || std::string_view(v) != "0";
  }()};
  return on;
}
}  // namespace
void set_flash_attention(bool enable) { flash_attention_flag().store(enable, std::memory_order_relaxed); }
bool flash_attention() { return flash_attention_flag().load(std::memory_order_relaxed); }

}  // namespace cuda

}  // namespace cohort
