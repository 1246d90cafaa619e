// The `nccl` backend: collectives on CUDA tensors through NCCL, one GPU per rank, on the
// communicator's own stream.
//
//   // the NCCL unique id comes from rank 0 through a host communicator (MPI) ...
//   auto nccl = make_nccl_communicator(mpi_comm, /*device_index=*/local_rank);
//   // ... or through a Store (TcpStore at MASTER_ADDR:MASTER_PORT; a HashStore for one process)
//   auto nccl = make_nccl_communicator(store, rank, world_size, local_rank);
//   Tensor g = grad.to(Device::cuda(local_rank));     // any CUDA tensor on that device
//   nccl->all_reduce(g, {ReduceOp::avg})->wait();       // queued; the current stream waits for it
//   float first = g.narrow(0, 0, 1).item<float>();      // reading on the host waits for the stream
//
// Streams. Each operation starts on the communicator's stream once the caller's current stream
// (cuda::current_stream of the device: where cohort's kernels run) has reached the point where
// the operation was issued, so it sees what the kernels queued before it wrote. wait() does not
// block the host: the current stream waits for the operation's end event. synchronize() blocks the
// host; barrier()'s wait() does too. The tensors of an operation are held until the stream has
// passed it, even when its Work is dropped first.
//
// Timeouts. A watchdog thread per communicator checks the operations in flight; when one's timeout
// passes (or NCCL reports an asynchronous error) the NCCL communicator is aborted (ncclCommAbort)
// instead of hanging, and the operation's wait() throws a TimeoutError whose report names the ranks
// that never arrived, as far as the store's status board knows; everything later on the
// communicator throws CommError. CPU tensors (and tensors on another GPU) are refused with a
// DeviceError. Without a GPU, construction throws DeviceError saying so.
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
