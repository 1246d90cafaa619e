// Without CUDA there are no device buffers or device timers (--backend nccl is refused earlier
// with a clearer message; this is the last line of defence).
#include <stdexcept>

#include "buffers.h"

namespace cohort::bench {

std::unique_ptr<Buffer> make_device_buffer(size_t, int) {
  throw std::runtime_error("cohort-bench was built without CUDA: no device buffers");
}

std::unique_ptr<Timer> make_device_timer(int) {
  throw std::runtime_error("cohort-bench was built without CUDA: no device timers");
}

std::string device_name(int, int* pci_bus_id) {
  *pci_bus_id = 0;
  return "none";
}

}  // namespace cohort::bench
