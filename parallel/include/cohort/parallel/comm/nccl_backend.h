// The `nccl` backend: collectives on CUDA device memory through NCCL, on the communicator's own
// stream (which first waits for the work already queued on the device's default stream).
//
//   // the NCCL unique id comes from rank 0 through a host communicator (MPI) ...
//   auto nccl = make_nccl_communicator(mpi_comm, /*device_index=*/local_rank);
//   // ... or through a Store (TcpStore at MASTER_ADDR:MASTER_PORT)
//   auto nccl = make_nccl_communicator(store, rank, world_size, local_rank);
//   nccl->all_reduce(d_in, d_out, n, DType::f32)->wait();   // raw device pointers
//
// Tensors on the CPU are refused with a DeviceError (cohort's CUDA tensors do not exist yet, so
// the raw-buffer API is the way in). On a timeout the NCCL communicator is aborted
// (ncclCommAbort) instead of hanging, and the report names the ranks that never arrived, as far
// as the store's status board knows. Without a GPU, construction throws DeviceError saying so.
#pragma once

#include <memory>
#include <string>

#include "cohort/parallel/comm/communicator.h"
#include "cohort/parallel/comm/store.h"

namespace cohort::parallel {

struct NcclOptions {
  std::string name = "world";
  Milliseconds init_timeout = Milliseconds(120000);  // for the unique-id exchange
};

// Unique id handed out by rank 0 of `bootstrap` (any host communicator) with a broadcast.
std::shared_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device_index,
                                                     const NcclOptions& options = {});
// Unique id handed out through `store` (rank 0 sets it, the others get it); the store also
// carries each rank's status for timeout reports, so it must outlive the communicator.
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Store> store, int rank, int size,
                                                     int device_index, const NcclOptions& options = {});

// Whether this build has the nccl backend (COHORT_WITH_NCCL).
bool nccl_backend_built();
// Number of usable CUDA devices; 0 without a GPU or driver, or in a build without CUDA.
int cuda_device_count();
// Why there is no usable GPU ("" when there is one), for skip messages.
std::string cuda_unavailable_reason();

}  // namespace cohort::parallel
