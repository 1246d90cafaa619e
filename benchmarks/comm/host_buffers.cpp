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

}  // namespace

std::unique_ptr<Buffer> make_host_buffer(size_t bytes) { return std::make_unique<HostBuffer>(bytes); }

}  // namespace cohort::bench
