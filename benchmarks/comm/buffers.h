// The benchmark's buffers: host memory for the mpi backend, CUDA device memory for nccl (through
// the CUDA runtime; a build without CUDA refuses device buffers).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace cohort::bench {

class Buffer {
 public:
  virtual ~Buffer() = default;
  virtual char* data() = 0;
  virtual void upload(const void* host, size_t bytes, size_t offset) = 0;  // host -> buffer[offset...]
  virtual void download(void* host, size_t bytes, size_t offset) = 0;      // buffer[offset...] -> host
};

std::unique_ptr<Buffer> make_host_buffer(size_t bytes);
std::unique_ptr<Buffer> make_device_buffer(size_t bytes, int device);
// "NVIDIA H100 80GB HBM3" and its PCI bus id, for the "Using devices" lines.
std::string device_name(int device, int* pci_bus_id);

}  // namespace cohort::bench
