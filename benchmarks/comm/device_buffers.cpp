// Device buffers through the CUDA runtime. Compiled only when CUDA was found; the stub below
// (device_buffers_stub.cpp) refuses them otherwise.
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

#include "buffers.h"

namespace cohort::bench {
namespace {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorName(err) + " (" +
                             cudaGetErrorString(err) + ")");
  }
}

class DeviceBuffer : public Buffer {
 public:
  DeviceBuffer(size_t bytes, int device) {
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaMalloc(reinterpret_cast<void**>(&data_), bytes + 4096), "cudaMalloc");
    check(cudaMemset(data_, 0, bytes), "cudaMemset");
  }
  ~DeviceBuffer() override { cudaFree(data_); }
  char* data() override { return data_; }
  void upload(const void* host, size_t bytes, size_t offset) override {
    check(cudaMemcpy(data_ + offset, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  void download(void* host, size_t bytes, size_t offset) override {
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    check(cudaMemcpy(host, data_ + offset, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy");
  }

 private:
  char* data_ = nullptr;
};

}  // namespace

std::unique_ptr<Buffer> make_device_buffer(size_t bytes, int device) {
  return std::make_unique<DeviceBuffer>(bytes, device);
}

std::string device_name(int device, int* pci_bus_id) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  *pci_bus_id = prop.pciBusID;
  return prop.name;
}

}  // namespace cohort::bench
