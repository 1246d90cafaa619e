// Device buffers and timers for --backend nccl. The memory is a cohort tensor on the rank's GPU
// (the caching allocator's, like any tensor the communicator moves); copies and events go on the
// current stream, which is the one the communicator waits for before each collective and makes wait
// for each collective's end. Compiled only when CUDA was found (device_buffers_stub.cpp otherwise).
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "buffers.h"
#include "cohort/core/cuda.h"
#include "cohort/core/tensor.h"

namespace cohort::bench {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
  }
}

cudaStream_t current(int device) { return static_cast<cudaStream_t>(cuda::current_stream(device).handle()); }

class DeviceBuffer : public Buffer {
 public:
  DeviceBuffer(size_t bytes, int device) : device_(device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    // Bytes as a tensor of one-byte elements, 4 KiB of slack as in the host buffers.
    tensor_ = Tensor::empty({static_cast<int64_t>(bytes + 4096)},
                            TensorOptions(DType::boolean).with_device(Device::cuda(device)));
    data_ = static_cast<char*>(tensor_.raw_data());
    check(cudaMemsetAsync(data_, 0, bytes, current(device_)), "cudaMemsetAsync");
    check(cudaStreamSynchronize(current(device_)), "cudaStreamSynchronize");
  }
  char* data() override { return data_; }
  void upload(const void* host, size_t bytes, size_t offset) override {
    check(cudaMemcpyAsync(data_ + offset, host, bytes, cudaMemcpyHostToDevice, current(device_)), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(current(device_)), "cudaStreamSynchronize");
  }
  void download(void* host, size_t bytes, size_t offset) override {
    // Queued after the wait() that ordered the current stream behind the collective.
    check(cudaMemcpyAsync(host, data_ + offset, bytes, cudaMemcpyDeviceToHost, current(device_)), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(current(device_)), "cudaStreamSynchronize");
  }

 private:
  int device_;
  Tensor tensor_;
  char* data_ = nullptr;
};

// nccl-tests' way: an event before the first collective and one after the last, on the stream the
// collectives are ordered with.
class DeviceTimer : public Timer {
 public:
  explicit DeviceTimer(int device) : device_(device), start_(true), stop_(true) {}
  void idle() override { cuda::current_stream(device_).synchronize(); }
  void start() override { start_.record(cuda::current_stream(device_)); }
  double stop() override {
    stop_.record(cuda::current_stream(device_));
    stop_.synchronize();
    return stop_.elapsed_ms(start_) / 1e3;
  }

 private:
  int device_;
  cuda::Event start_, stop_;
};

}  // namespace

std::unique_ptr<Buffer> make_device_buffer(size_t bytes, int device) {
  return std::make_unique<DeviceBuffer>(bytes, device);
}

std::unique_ptr<Timer> make_device_timer(int device) { return std::make_unique<DeviceTimer>(device); }

std::string device_name(int device, int* pci_bus_id) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  *pci_bus_id = prop.pciBusID;
  return prop.name;
}

}  // namespace cohort::bench
