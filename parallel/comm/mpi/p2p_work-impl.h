// Send/recv on the mpi backend: posted at once (MPI_Isend/MPI_Irecv, so matching follows issue
// order and a recv posted before a collective never blocks it), completed by polling in wait(),
// is_completed() or the progress thread. A recv that times out is cancelled; a send cannot be, so
// it is abandoned, keeping its buffers alive.
#pragma once

#include <mpi.h>

#include <exception>
#include <memory>
#include <mutex>

#include "../deadline-impl.h"
#include "cohort/parallel/comm/work.h"

namespace cohort::parallel::detail {

class MpiCommunicator;

class MpiP2pWork : public Work, public std::enable_shared_from_this<MpiP2pWork> {
 public:
  MpiP2pWork(MpiCommunicator& comm, Collective kind, uint64_t seq, int peer, int tag, Milliseconds timeout);
  // Posts the request; separate from the constructor so a failure leaves nothing half-built.
  void post(const void* send_buf, void* recv_buf, int count, MPI_Datatype type, MPI_Comm comm);

  bool is_completed() override { return test(); }
  void wait(Milliseconds timeout) override;
  bool test();  // thread-safe MPI_Test

 private:
  [[noreturn]] void give_up(bool op_timed_out, Milliseconds waited);

  MpiCommunicator& comm_;
  int peer_, tag_;
  Milliseconds timeout_;
  Clock::time_point op_deadline_;
  std::mutex mutex_;
  MPI_Request request_ = MPI_REQUEST_NULL;
  bool done_ = false;
  std::exception_ptr error_;  // set when it timed out
};

}  // namespace cohort::parallel::detail
