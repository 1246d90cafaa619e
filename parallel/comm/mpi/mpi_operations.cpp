// The mpi backend's operations: each collective is queued with its arguments and runs on shared
// memory or through MPI (whichever the communicator chose at construction); send/recv are posted
// at once; split waits for the queue to empty, then splits the admin communicator.
#include <climits>

#include "mpi_check-impl.h"
#include "mpi_communicator-impl.h"
#include "p2p_work-impl.h"

namespace cohort::parallel {
namespace detail {
namespace {

size_t bytes_of(int64_t count, DType dtype) { return static_cast<size_t>(count) * element_size(dtype); }

}  // namespace

WorkPtr MpiCommunicator::do_all_reduce(const void* in, void* out, int64_t count, DType dtype,
                                       const AllReduceOptions& o, uint64_t seq) {
  return submit(Collective::all_reduce, seq, bytes_of(count, dtype), {in, out, count, dtype, o.op, 0, o.timeout});
}

WorkPtr MpiCommunicator::do_broadcast(const void* in, void* out, int64_t count, DType dtype, const BroadcastOptions& o,
                                      uint64_t seq) {
  return submit(Collective::broadcast, seq, bytes_of(count, dtype),
                {in, out, count, dtype, ReduceOp::sum, o.root, o.timeout});
}

WorkPtr MpiCommunicator::do_all_gather(const void* in, void* out, int64_t count, DType dtype,
                                       const AllGatherOptions& o, uint64_t seq) {
  return submit(Collective::all_gather, seq, bytes_of(count, dtype) * size(),
                {in, out, count, dtype, ReduceOp::sum, 0, o.timeout});
}

WorkPtr MpiCommunicator::do_reduce_scatter(const void* in, void* out, int64_t count, DType dtype,
                                           const ReduceScatterOptions& o, uint64_t seq) {
  return submit(Collective::reduce_scatter, seq, bytes_of(count, dtype) * size(),
                {in, out, count, dtype, o.op, 0, o.timeout});
}

WorkPtr MpiCommunicator::do_barrier(const BarrierOptions& o, uint64_t seq) {
  return submit(Collective::barrier, seq, 0, {nullptr, nullptr, 0, DType::f32, ReduceOp::sum, 0, o.timeout});
}

void MpiCommunicator::run_shm(Collective kind, const OpArgs& a, ShmWaiter& w) {
  switch (kind) {
    case Collective::all_reduce: return shm_coll_->all_reduce(a.input, a.output, a.count, a.dtype, a.op, w);
    case Collective::broadcast: return shm_coll_->broadcast(a.input, a.output, a.count, a.dtype, a.root, w);
    case Collective::all_gather: return shm_coll_->all_gather(a.input, a.output, a.count, a.dtype, w);
    case Collective::reduce_scatter: return shm_coll_->reduce_scatter(a.input, a.output, a.count, a.dtype, a.op, w);
    case Collective::barrier: return shm_coll_->barrier(w);
    default: COHORT_THROW(ValueError, "mpi communicator: ", collective_name(kind), " is not a queued collective");
  }
}

void MpiCommunicator::run_native(Collective kind, const OpArgs& a, NativePoll& p) {
  switch (kind) {
    case Collective::all_reduce: return native_->all_reduce(a.input, a.output, a.count, a.dtype, a.op, p);
    case Collective::broadcast: return native_->broadcast(a.input, a.output, a.count, a.dtype, a.root, p);
    case Collective::all_gather: return native_->all_gather(a.input, a.output, a.count, a.dtype, p);
    case Collective::reduce_scatter: return native_->reduce_scatter(a.input, a.output, a.count, a.dtype, a.op, p);
    case Collective::barrier: return native_->barrier(p);
    default: COHORT_THROW(ValueError, "mpi communicator: ", collective_name(kind), " is not a queued collective");
  }
}

namespace {
void check_p2p(const MpiCommunicator& c, Collective kind, int64_t count, int tag) {
  COHORT_CHECK(count <= INT_MAX, ValueError, "mpi communicator: ", collective_name(kind), " of ", count,
               " elements is more than MPI's int count allows (2^31-1); split the buffer");
  COHORT_CHECK(tag >= 0 && tag <= 32767, ValueError, "mpi communicator: ", collective_name(kind), " tag ", tag,
               " is outside [0, 32767], the range every MPI supports");
}
}  // namespace

WorkPtr MpiCommunicator::do_send(const void* in, int64_t count, DType dtype, int dst, const SendOptions& o,
                                 uint64_t seq) {
  check_p2p(*this, Collective::send, count, o.tag);
  auto work = std::make_shared<MpiP2pWork>(*this, Collective::send, seq, dst, o.tag, o.timeout);
  work->post(in, nullptr, static_cast<int>(count), mpi_datatype(dtype), data_);
  std::lock_guard<std::mutex> lock(p2p_mutex_);
  p2p_.push_back(work);
  return work;
}

WorkPtr MpiCommunicator::do_recv(void* out, int64_t count, DType dtype, int src, const RecvOptions& o, uint64_t seq) {
  check_p2p(*this, Collective::recv, count, o.tag);
  auto work = std::make_shared<MpiP2pWork>(*this, Collective::recv, seq, src, o.tag, o.timeout);
  work->post(nullptr, out, static_cast<int>(count), mpi_datatype(dtype), data_);
  std::lock_guard<std::mutex> lock(p2p_mutex_);
  p2p_.push_back(work);
  return work;
}

// The progress thread's tick: answer status queries (ranks without shared memory ask for them)
// and test outstanding sends/recvs, which large messages need to make progress.
void MpiCommunicator::idle() {
  if (!shm_) query_->serve();
  std::vector<std::shared_ptr<MpiP2pWork>> live;
  {
    std::lock_guard<std::mutex> lock(p2p_mutex_);
    for (auto& weak : p2p_) {
      if (auto w = weak.lock()) live.push_back(std::move(w));
    }
    p2p_.clear();
  }
  std::vector<std::weak_ptr<MpiP2pWork>> still;
  for (auto& w : live) {
    if (!w->test()) still.push_back(w);
  }
  std::lock_guard<std::mutex> lock(p2p_mutex_);
  p2p_.insert(p2p_.end(), still.begin(), still.end());
}

std::shared_ptr<Communicator> MpiCommunicator::do_split(int color, int key, const std::string& name, uint64_t seq) {
  queue_->drain();
  set_entered(seq, Collective::split);
  MPI_Comm sub = MPI_COMM_NULL;
  COHORT_MPI_CHECK(MPI_Comm_split(admin_, color < 0 ? MPI_UNDEFINED : color, key, &sub));
  set_completed(seq);
  if (sub == MPI_COMM_NULL) return nullptr;
  std::shared_ptr<Communicator> child;
  try {
    child = std::make_shared<MpiCommunicator>(sub, name, options_);
  } catch (...) {
    MPI_Comm_free(&sub);
    throw;
  }
  MPI_Comm_free(&sub);
  return child;
}

}  // namespace detail

std::shared_ptr<Communicator> make_mpi_world_communicator(const std::string& name, const MpiOptions& options) {
  COHORT_CHECK(MpiSession::active(), CommError, "mpi communicator '", name,
               "': MPI is not initialized; create a cohort::parallel::MpiSession in main() first");
  int provided = MPI_THREAD_SINGLE;
  COHORT_MPI_CHECK(MPI_Query_thread(&provided));
  COHORT_CHECK(provided == MPI_THREAD_MULTIPLE, CommError, "mpi communicator '", name,
               "': MPI was initialized without MPI_THREAD_MULTIPLE, which the progress thread needs; "
               "initialize it through cohort::parallel::MpiSession");
  return std::make_shared<detail::MpiCommunicator>(MPI_COMM_WORLD, name, options);
}

ProcessGroup make_mpi_world_group(const std::string& name, const MpiOptions& options) {
  return ProcessGroup(name, make_mpi_world_communicator(name, options));
}

}  // namespace cohort::parallel
