// ProcessGroup: the communicators one set of ranks uses, passed around as an object (never a
// global), so subgroups, several backends and ranks-as-threads all work.
//
//   MpiSession mpi(&argc, &argv);                 // once, in main()
//   ProcessGroup world = make_mpi_world_group();  // host memory over MPI
//   world.all_reduce(grad, {ReduceOp::avg})->wait();
//   ProcessGroup pairs = world.split(world.rank() / 2, world.rank(), "pairs");  // {0,1}, {2,3}, ...
//
// A group holds a host communicator (CPU tensors: mpi or local) and optionally a device one
// (CUDA tensors: nccl); the tensor-taking collectives pick by the tensor's device.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cohort/parallel/comm/communicator.h"
#include "cohort/parallel/comm/store.h"

namespace cohort::parallel {

class ProcessGroup {
 public:
  ProcessGroup() = default;  // not a member of any group: is_member() is false
  ProcessGroup(std::string name, std::shared_ptr<Communicator> host, std::shared_ptr<Communicator> device = nullptr);

  bool is_member() const { return host_ != nullptr || device_ != nullptr; }
  int rank() const;
  int size() const;
  const std::string& name() const { return name_; }

  bool has_host() const { return host_ != nullptr; }
  bool has_device() const { return device_ != nullptr; }
  Communicator& host() const;    // throws DeviceError when the group has no host communicator
  Communicator& device() const;  // throws DeviceError when the group has no device communicator
  Communicator& communicator_for(const Device& device) const;

  // Collectives on tensors, routed by the tensor's device (see Communicator for the layouts).
  WorkPtr all_reduce(Tensor& tensor, const AllReduceOptions& options = {}) const;
  WorkPtr broadcast(Tensor& tensor, const BroadcastOptions& options = {}) const;
  WorkPtr all_gather(Tensor& output, const Tensor& input, const AllGatherOptions& options = {}) const;
  WorkPtr reduce_scatter(Tensor& output, const Tensor& input, const ReduceScatterOptions& options = {}) const;
  WorkPtr barrier(const BarrierOptions& options = {}) const;  // on the host communicator when there is one
  WorkPtr send(const Tensor& tensor, int dst, const SendOptions& options = {}) const;
  WorkPtr recv(Tensor& tensor, int src, const RecvOptions& options = {}) const;

  // Subgroups. Collective over every rank of this group. split(): ranks with the same color >= 0
  // form one group ordered by (key, rank); a negative color gives an empty group. new_group():
  // the listed ranks (in that order) form the group; the others get an empty group.
  ProcessGroup split(int color, int key, const std::string& name) const;
  ProcessGroup new_group(const std::vector<int>& ranks, const std::string& name) const;

 private:
  std::string name_;
  std::shared_ptr<Communicator> host_;
  std::shared_ptr<Communicator> device_;
};

// How to build the world group of a job. Filled by hand today; later by the env module from the
// rank contract (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), since nothing else may
// read the environment.
struct ProcessGroupConfig {
  // "mpi" (host), "nccl" (device, plus an mpi host communicator when MPI runs; without MPI the
  // group has no host side, and world_size 1 with no master_addr needs no rendezvous at all)
  std::string backend = "mpi";
  int rank = -1;                // -1: take rank and size from MPI_COMM_WORLD
  int world_size = -1;
  int local_rank = 0;           // the CUDA device index for nccl
  std::string master_addr;      // the TCP store of rank 0, when there is no MPI to hand out the NCCL id
  int master_port = 0;
  Milliseconds timeout = kDefaultTimeout;  // for the rendezvous
  std::string name = "world";
};

// Throws ValueError for an unknown backend and CommError/DeviceError when it cannot be built here
// (e.g. "nccl" without a GPU, "mpi" without MpiSession).
ProcessGroup make_process_group(const ProcessGroupConfig& config);

}  // namespace cohort::parallel
