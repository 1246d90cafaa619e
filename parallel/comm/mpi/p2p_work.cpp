#include "p2p_work-impl.h"

#include <sched.h>

#include <thread>

#include "mpi_check-impl.h"
#include "mpi_communicator-impl.h"

namespace cohort::parallel::detail {

MpiP2pWork::MpiP2pWork(MpiCommunicator& comm, Collective kind, uint64_t seq, int peer, int tag, Milliseconds timeout)
    : Work(kind, seq), comm_(comm), peer_(peer), tag_(tag), timeout_(timeout), op_deadline_(deadline_after(timeout)) {}

void MpiP2pWork::post(const void* send_buf, void* recv_buf, int count, MPI_Datatype type, MPI_Comm comm) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (collective() == Collective::send) {
    COHORT_MPI_CHECK(MPI_Isend(send_buf, count, type, peer_, tag_, comm, &request_));
  } else {
    COHORT_MPI_CHECK(MPI_Irecv(recv_buf, count, type, peer_, tag_, comm, &request_));
  }
}

bool MpiP2pWork::test() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!done_) {
    int flag = 0;
    COHORT_MPI_CHECK(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
    done_ = flag != 0;
  }
  return done_;
}

void MpiP2pWork::wait(Milliseconds timeout) {
  const auto start = Clock::now();
  const auto deadline = std::min(op_deadline_, deadline_after(timeout, start));
  for (uint64_t it = 0; !test(); ++it) {
    if (Clock::now() >= deadline) give_up(deadline == op_deadline_, elapsed_since(start));
    if (it < 64) continue;
    if (Clock::now() - start > Milliseconds(1)) {
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    } else {
      sched_yield();
    }
  }
  if (error_) std::rethrow_exception(error_);
}

void MpiP2pWork::give_up(bool op_timed_out, Milliseconds waited) {
  const auto peers = comm_.peer_statuses(Milliseconds(1000));
  std::string report = str_cat(
      "mpi group '", comm_.name(), "': ", collective_name(collective()), " #", seq(),
      collective() == Collective::send ? " to rank " : " from rank ", peer_, " (tag ", tag_, ") timed out after ",
      (op_timed_out ? timeout_ : waited).count(), " ms on rank ", comm_.rank(), " of ", comm_.size(), "; rank ", peer_,
      ": ", describe_peer(peers[peer_], peers[peer_].entered + 1));
  if (!op_timed_out) throw TimeoutError(report + " (only this wait() gave up)", __FILE__, __LINE__);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (collective() == Collective::recv) {
      MPI_Cancel(&request_);
      MPI_Wait(&request_, MPI_STATUS_IGNORE);
    } else {
      // MPI cannot take a send back: leak this work (and the buffers it keeps) on purpose.
      new std::shared_ptr<MpiP2pWork>(shared_from_this());
    }
    done_ = true;
    error_ = std::make_exception_ptr(TimeoutError(report, __FILE__, __LINE__));
  }
  std::rethrow_exception(error_);
}

}  // namespace cohort::parallel::detail
