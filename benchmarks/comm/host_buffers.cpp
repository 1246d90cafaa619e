#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include "buffers.h"

namespace cohort::bench {
namespace {

// Page-aligned and touched once, so the first timed iteration does not pay for page faults.
class HostBuffer : public Buffer {
 public:
  explicit HostBuffer(size_t bytes) {
    data_ = static_cast<char*>(std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096 + 4096));
    if (!data_) throw std::bad_alloc();
    std::memset(data_, 0, bytes);
  }
  ~HostBuffer() override { std::free(data_); }
  char* data() override { return data_; }
  void upload(const void* host, size_t bytes, size_t offset) override { std::memcpy(data_ + offset, host, bytes); }
  void download(void* host, size_t bytes, size_t offset) override { std::memcpy(host, data_ + offset, bytes); }

 private:
  char* data_;
};

class HostTimer : public Timer {
 public:
  void idle() override {}  // the host backends' wait() returned: nothing is running
  void start() override { t0_ = std::chrono::steady_clock::now(); }
  double stop() override { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace

std::unique_ptr<Buffer> make_host_buffer(size_t bytes) { return std::make_unique<HostBuffer>(bytes); }
std::unique_ptr<Timer> make_host_timer() { return std::make_unique<HostTimer>(); }

}  // namespace cohort::bench
