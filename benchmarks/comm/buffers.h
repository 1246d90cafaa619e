// The benchmark's buffers and clocks: host memory and the steady clock for the mpi backend; for
// nccl, CUDA device memory (a cohort tensor on the rank's GPU, from the caching allocator) and CUDA
// events on the current stream, which is where wait() orders the collectives (a build without CUDA
// refuses both).
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

// Times one block of iterations. start() and stop() bracket the issue of the collectives and
// their wait()s; stop() returns the seconds between them once the work has finished.
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void idle() = 0;  // waits until nothing of ours is still running (before a barrier)
  virtual void start() = 0;
  virtual double stop() = 0;
};

std::unique_ptr<Timer> make_host_timer();
std::unique_ptr<Timer> make_device_timer(int device);

}  // namespace cohort::bench
