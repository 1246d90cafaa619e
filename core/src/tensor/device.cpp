#include "cohort/core/device.h"

#include "cohort/config.h"
#include "cohort/core/error.h"

namespace cohort {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::ostream& operator<<(std::ostream& out, const Device& d) { return out << d.str(); }

void check_device_available(const Device& device, const char* op) {
  if (device.is_cpu()) return;
#if COHORT_WITH_CUDA
  COHORT_THROW(DeviceError, op, ": ", device.str(),
               " was requested, but CUDA tensors are not implemented in this version of cohort "
               "(the CUDA toolkit was found at build time); use Device::cpu()");
#else
  COHORT_THROW(DeviceError, op, ": ", device.str(),
               " was requested, but this cohort was built without CUDA; rebuild with the CUDA toolkit "
               "installed (-DCOHORT_WITH_CUDA=ON) or use Device::cpu()");
#endif
}

}  // namespace cohort
