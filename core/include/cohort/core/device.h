// Where a tensor's memory lives. CPU now; CUDA devices slot into the same type, so code written
// against Device does not change when tensors move to a GPU.
#pragma once

#include <ostream>
#include <string>

namespace cohort {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {DeviceType::cpu, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;  // "cpu", "cuda:1"
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

std::ostream& operator<<(std::ostream& out, const Device& d);

// Throws DeviceError unless `device` can hold tensors in this build on this machine.
void check_device_available(const Device& device, const char* op);

}  // namespace cohort
