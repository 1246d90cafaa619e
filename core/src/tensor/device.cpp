#include "cohort/core/device.h"

namespace cohort {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::ostream& operator<<(std::ostream& out, const Device& d) { return out << d.str(); }

// check_device_available() is in cuda/runtime.cpp (builds with CUDA) or cuda/stubs.cpp.

}  // namespace cohort
