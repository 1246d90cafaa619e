// CUDA devices: whether there is one, streams, events, and the caching device allocator's numbers.
//
//   using namespace cohort;
//   if (cuda::is_available()) {
//     Tensor x = randn({1024, 1024}).to(Device::cuda(0));   // host -> device
//     Tensor y = relu(matmul(x, x));                        // runs on the GPU, on the current stream
//     std::cout << y.sum().item<float>();                   // item() copies back and waits
//     cuda::MemoryStats m = cuda::memory_stats(0);          // allocated, reserved, peak
//   } else {
//     std::cerr << cuda::unavailable_reason() << "\n";      // "built without CUDA", "no driver", ...
//   }
//
// Every op on CUDA tensors is queued on the current stream of the tensor's device and returns at
// once; reading values on the host (item(), to(Device::cpu()), printing) waits for them. The
// current stream is the device's default (legacy) stream unless a StreamGuard says otherwise, per
// host thread. Device memory comes from a caching allocator: a freed block goes back on a free list
// for its stream and size and is handed out again, so a training step stops calling cudaMalloc after
// the first one. The header holds no CUDA types, so it compiles in a build without the toolkit,
// where is_available() is false and everything that needs a device throws DeviceError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cohort::cuda {

// Whether this build has CUDA (COHORT_WITH_CUDA) and a driver with at least one device.
bool is_available();
// Number of usable devices: 0 without a GPU, without a driver, or in a build without CUDA.
int device_count();
// Why is_available() is false ("" when it is true), for messages and test skips.
std::string unavailable_reason();

struct DeviceProperties {
  std::string name;               // "NVIDIA H100 80GB HBM3"
  int major = 0, minor = 0;       // compute capability (9.0 for Hopper)
  int multiprocessors = 0;
  size_t total_memory = 0;        // bytes
  size_t l2_cache = 0;            // bytes
  double memory_bandwidth = 0;    // bytes/s, from the memory clock and bus width
};
DeviceProperties device_properties(int device);

// Makes `device` the calling thread's current device (torch.cuda.set_device). cohort's ops choose
// their tensors' device themselves; this matters for the first touch: a rank that uses cuda:k
// should call it before anything else, so no CUDA context is created on cuda:0.
void set_device(int device);
// The calling thread's current device (-1 without a GPU).
int current_device();

// Waits until every stream of `device` (all devices when -1) has finished its work.
void synchronize(int device = -1);

// A CUDA stream (a handle: copying it does not create a stream). The default-constructed Stream
// of a device is its legacy default stream.
class Stream {
 public:
  Stream() = default;
  // A new non-blocking stream on `device`, owned by the process (never destroyed).
  static Stream create(int device);
  int device() const { return device_; }
  void* handle() const { return handle_; }  // a cudaStream_t
  void synchronize() const;
  bool query() const;  // true when everything queued on it has finished
  bool operator==(const Stream& o) const { return device_ == o.device_ && handle_ == o.handle_; }

  Stream(int device, void* handle) : device_(device), handle_(handle) {}

 private:
  int device_ = 0;
  void* handle_ = nullptr;
};

// The stream ops on `device` run on, for the calling thread.
Stream current_stream(int device);

// Makes `stream` current for its device on this thread until the guard goes out of scope.
class StreamGuard {
 public:
  explicit StreamGuard(Stream stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
};

// A CUDA event: a point in a stream's work, to wait for or to time.
class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(const Stream& stream);
  void wait(const Stream& stream) const;  // `stream` waits (on the device) until the event
  void synchronize() const;               // the host waits
  bool query() const;                     // whether it has happened
  // Milliseconds between `start` and this event (both recorded with timing = true).
  float elapsed_ms(const Event& start) const;

 private:
  void* event_ = nullptr;  // a cudaEvent_t
  int device_ = -1;
};

struct MemoryStats {
  size_t allocated = 0;       // bytes in live tensors on the device
  size_t reserved = 0;        // allocated + cached by cohort (what cudaMalloc gave out)
  size_t peak_allocated = 0;  // most bytes live at once since the last reset
  uint64_t cache_hits = 0, cache_misses = 0;  // allocations served from the cache / by cudaMalloc
};
MemoryStats memory_stats(int device);
void reset_peak_memory_stats(int device);
// Returns every cached (free) block to the driver; live tensors are untouched.
void empty_cache();

// Matrix products in f32 may use TF32 tensor cores (10-bit mantissa inputs, about 3 decimal
// digits): faster, less exact. Off by default, as in PyTorch >= 1.12.
void set_allow_tf32(bool allow);
bool allow_tf32();

// scaled_dot_product_attention and self_attention on bf16/f16 CUDA tensors with a head size of
// 32, 64 or 128 run fused (flash) kernels: the (L, S) scores stay on chip and backward recomputes
// them. On by default; set_flash_attention(false), or COHORT_CUDA_FLASH_ATTENTION=0 in the
// environment, selects the unfused path (cuBLAS products and row kernels), e.g. to compare them.
void set_flash_attention(bool enable);
bool flash_attention();

}  // namespace cohort::cuda
