// ProcessGroup: routes tensor collectives to the host or device communicator and builds subgroups.
#include "cohort/parallel/comm/process_group.h"

#include <algorithm>
#include <utility>

namespace cohort::parallel {

ProcessGroup::ProcessGroup(std::string name, std::shared_ptr<Communicator> host, std::shared_ptr<Communicator> device)
    : name_(std::move(name)), host_(std::move(host)), device_(std::move(device)) {
  COHORT_CHECK(host_ || device_, ValueError, "process group '", name_,
               "': needs a host or a device communicator (an empty group is ProcessGroup())");
  if (host_ && device_) {
    COHORT_CHECK(host_->rank() == device_->rank() && host_->size() == device_->size(), ValueError,
                 "process group '", name_, "': the host communicator is rank ", host_->rank(), " of ", host_->size(),
                 " but the device communicator is rank ", device_->rank(), " of ", device_->size());
  }
}

int ProcessGroup::rank() const {
  COHORT_CHECK(is_member(), ValueError, "process group: this rank is not a member of the group");
  return host_ ? host_->rank() : device_->rank();
}

int ProcessGroup::size() const {
  COHORT_CHECK(is_member(), ValueError, "process group: this rank is not a member of the group");
  return host_ ? host_->size() : device_->size();
}

Communicator& ProcessGroup::host() const {
  COHORT_CHECK(host_, DeviceError, "process group '", name_,
               "' has no host communicator: it was built for device memory only; build it with an mpi or "
               "local communicator for CPU tensors");
  return *host_;
}

Communicator& ProcessGroup::device() const {
  COHORT_CHECK(device_, DeviceError, "process group '", name_,
               "' has no device communicator: cohort was built without NCCL, or the group was made for host "
               "memory (backend mpi/local)");
  return *device_;
}

Communicator& ProcessGroup::communicator_for(const Device& device) const {
  return device.is_cpu() ? host() : this->device();
}

WorkPtr ProcessGroup::all_reduce(Tensor& tensor, const AllReduceOptions& options) const {
  return communicator_for(tensor.device()).all_reduce(tensor, options);
}
WorkPtr ProcessGroup::broadcast(Tensor& tensor, const BroadcastOptions& options) const {
  return communicator_for(tensor.device()).broadcast(tensor, options);
}
WorkPtr ProcessGroup::all_gather(Tensor& output, const Tensor& input, const AllGatherOptions& options) const {
  return communicator_for(input.device()).all_gather(output, input, options);
}
WorkPtr ProcessGroup::reduce_scatter(Tensor& output, const Tensor& input, const ReduceScatterOptions& options) const {
  return communicator_for(input.device()).reduce_scatter(output, input, options);
}
WorkPtr ProcessGroup::barrier(const BarrierOptions& options) const {
  return host_ ? host_->barrier(options) : device().barrier(options);
}
WorkPtr ProcessGroup::send(const Tensor& tensor, int dst, const SendOptions& options) const {
  return communicator_for(tensor.device()).send(tensor, dst, options);
}
WorkPtr ProcessGroup::recv(Tensor& tensor, int src, const RecvOptions& options) const {
  return communicator_for(tensor.device()).recv(tensor, src, options);
}

// Both communicators split the same way, host first, so their rank orders agree.
ProcessGroup ProcessGroup::split(int color, int key, const std::string& name) const {
  COHORT_CHECK(is_member(), ValueError, "process group: split called on a rank that is not in the group");
  std::shared_ptr<Communicator> host = host_ ? host_->split(color, key, name) : nullptr;
  std::shared_ptr<Communicator> device = device_ ? device_->split(color, key, name) : nullptr;
  if (!host && !device) return ProcessGroup();
  return ProcessGroup(name, std::move(host), std::move(device));
}

ProcessGroup ProcessGroup::new_group(const std::vector<int>& ranks, const std::string& name) const {
  const int me = rank();
  for (int r : ranks) {
    COHORT_CHECK(r >= 0 && r < size(), ValueError, "process group '", name_, "': new_group('", name, "') lists rank ",
                 r, ", but the group has ranks 0..", size() - 1);
    COHORT_CHECK(std::count(ranks.begin(), ranks.end(), r) == 1, ValueError, "process group '", name_,
                 "': new_group('", name, "') lists rank ", r, " twice");
  }
  auto it = std::find(ranks.begin(), ranks.end(), me);
  const bool member = it != ranks.end();
  return split(member ? 0 : -1, member ? static_cast<int>(it - ranks.begin()) : 0, name);
}

}  // namespace cohort::parallel
