// Library handles (cuBLAS, cuDNN) per device and thread (implementation-only header).
//
// Such handles take milliseconds to create and must not be used by two threads at once. So each
// thread keeps one per device in a `ThreadSlots<Slot>` (Slot holds `handle` and whatever the library
// binds to it: a stream, a workspace); when the thread exits its handles go to the process-wide
// `HandlePool`, and the next thread that needs one takes it from there instead of creating one.
#pragma once

#include <mutex>
#include <vector>

namespace cohort::detail {

template <class Handle>
class HandlePool {
 public:
  static HandlePool& instance() {
    static HandlePool* pool = new HandlePool;  // never destroyed: threads may exit during static destruction
    return *pool;
  }
  // A free handle of `device`, or a null one.
  Handle take(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (static_cast<int>(free_.size()) <= device || free_[device].empty()) return Handle{};
    Handle h = free_[device].back();
    free_[device].pop_back();
    return h;
  }
  void give_back(int device, Handle h) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (static_cast<int>(free_.size()) <= device) free_.resize(device + 1);
    free_[device].push_back(h);
  }

 private:
  std::mutex mutex_;
  std::vector<std::vector<Handle>> free_;  // per device
};

// One Slot per device for the calling thread (use it as a thread_local).
template <class Slot>
struct ThreadSlots {
  std::vector<Slot> devices;
  Slot& at(int device) {
    if (static_cast<int>(devices.size()) <= device) devices.resize(device + 1);
    return devices[device];
  }
  ~ThreadSlots() {
    for (size_t d = 0; d < devices.size(); ++d) {
      if (devices[d].handle != nullptr) {
        HandlePool<decltype(devices[d].handle)>::instance().give_back(static_cast<int>(d), devices[d].handle);
      }
    }
  }
};

}  // namespace cohort::detail
