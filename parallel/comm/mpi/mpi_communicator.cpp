#include "mpi_communicator-impl.h"

#include <sched.h>
#include <unistd.h>

#include <climits>
#include <thread>

#include "mpi_check-impl.h"
#include "p2p_work-impl.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define COHORT_CPU_RELAX() _mm_pause()
#else
#define COHORT_CPU_RELAX() ((void)0)
#endif

namespace cohort::parallel::detail {
namespace {

// How often the idle progress thread wakes: to pick up small collectives nobody waits for, answer
// status queries and test sends/recvs. Rarely, on purpose: it shares a core with the program's
// thread, and waking it every few milliseconds measurably slowed small collectives (measured: 5 ms
// ticks made an 8-byte all-reduce 0.3 -> 15 us in some runs on a 2-core machine).
constexpr Milliseconds kTick{100};
constexpr Milliseconds kQueryBudget{2000};  // how long a timed-out rank waits for its peers' status

// ShmWaiter over MpiCommunicator::pause.
class RunWaiter : public ShmWaiter {
 public:
  RunWaiter(MpiCommunicator& comm, MpiRun& run) : comm_(comm), run_(run) {}
  void pause(uint64_t iteration) override { comm_.pause(run_, iteration, slow_since_); }

 private:
  MpiCommunicator& comm_;
  MpiRun& run_;
  Clock::time_point slow_since_;
};

int comm_rank(MPI_Comm c) {
  int r = 0;
  COHORT_MPI_CHECK(MPI_Comm_rank(c, &r));
  return r;
}

int comm_size(MPI_Comm c) {
  int s = 0;
  COHORT_MPI_CHECK(MPI_Comm_size(c, &s));
  return s;
}

MPI_Comm dup(MPI_Comm c) {
  MPI_Comm out;
  COHORT_MPI_CHECK(MPI_Comm_dup(c, &out));
  COHORT_MPI_CHECK(MPI_Comm_set_errhandler(out, MPI_ERRORS_RETURN));
  return out;
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm parent, const std::string& name, const MpiOptions& options)
    : Communicator(comm_rank(parent), comm_size(parent), name), options_(options) {
  data_ = dup(parent);
  ctrl_ = dup(parent);
  admin_ = dup(parent);
  // Shared memory when every rank is on this node (the node communicator then has them all).
  MPI_Comm node;
  COHORT_MPI_CHECK(MPI_Comm_split_type(data_, MPI_COMM_TYPE_SHARED, rank(), MPI_INFO_NULL, &node));
  const int node_ranks = comm_size(node);
  const bool one_node = node_ranks == size();
  // Spin while waiting only when this node has a core for every rank of the communicator.
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  spin_window_ = node_ranks <= cores ? Clock::duration(Milliseconds(2)) : Clock::duration(0);
  const bool want_shm = options.algorithm == MpiOptions::Algorithm::shared_memory ||
                        (options.algorithm == MpiOptions::Algorithm::automatic && one_node);
  if (want_shm && !one_node) {
    MPI_Comm_free(&node);
    COHORT_THROW(ValueError, "mpi communicator '", name, "': shared-memory collectives were asked for, but the ",
                 size(), " ranks span more than one node; use Algorithm::automatic or native");
  }
  try {
    if (want_shm) {
      shm_ = std::make_unique<ShmSegment>(node, rank(), size(), options.chunk_bytes);
      shm_coll_ = std::make_unique<ShmCollectives>(*shm_, rank(), options.one_shot_bytes, options.streaming_bytes);
    }
  } catch (...) {
    MPI_Comm_free(&node);
    throw;
  }
  MPI_Comm_free(&node);
  native_ = std::make_unique<NativeCollectives>(data_, rank(), size());
  query_ = std::make_unique<PeerQuery>(ctrl_, rank(), size(), [this] { return my_status(); });
  queue_ = std::make_shared<OpQueue>("mpi group '" + name + "'", kTick, [this] { idle(); });
  queue_->start();
}

MpiCommunicator::~MpiCommunicator() {
  queue_->stop();  // runs what is still queued, then joins the progress thread
  if (!MpiSession::active()) return;  // MPI is gone already: nothing left to free
  for (int i = 0; i < 200 && !native_->reap_abandoned(); ++i) std::this_thread::sleep_for(Milliseconds(5));
  native_.reset();
  query_.reset();
  MPI_Comm_free(&data_);
  MPI_Comm_free(&ctrl_);
  MPI_Comm_free(&admin_);
}

std::string MpiCommunicator::description() const {
  if (!shm_) return "mpi (MPI nonblocking collectives)";
  return str_cat("mpi (shared memory, ", shm_->chunk_bytes() / 1024, " KiB steps)");
}

// ---- status, for timeout reports ----

void MpiCommunicator::set_entered(uint64_t seq, Collective kind) {
  entered_.store(pack_entered(seq, kind), std::memory_order_relaxed);
  if (shm_) shm_->counters(rank()).entered.value.store(pack_entered(seq, kind), std::memory_order_release);
}

void MpiCommunicator::set_completed(uint64_t seq) {
  completed_.store(seq, std::memory_order_relaxed);
  if (shm_) shm_->counters(rank()).completed.value.store(seq, std::memory_order_release);
}

void MpiCommunicator::set_failed(uint64_t seq) {
  failed_.store(seq, std::memory_order_relaxed);
  if (shm_) shm_->counters(rank()).failed.value.store(seq, std::memory_order_release);
}

PeerStatus MpiCommunicator::my_status() const {
  PeerStatus s;
  s.known = true;
  const uint64_t e = entered_.load(std::memory_order_relaxed);
  s.entered = unpack_seq(e);
  s.entered_kind = unpack_kind(e);
  s.completed = completed_.load(std::memory_order_relaxed);
  s.failed = failed_.load(std::memory_order_relaxed);
  return s;
}

// On one node the peers' counters are right there; otherwise ask them (their progress threads answer).
std::vector<PeerStatus> MpiCommunicator::peer_statuses(Milliseconds budget) {
  if (!shm_) return query_->query_all(budget);
  std::vector<PeerStatus> peers(size());
  for (int r = 0; r < size(); ++r) {
    const RankCounters& c = shm_->counters(r);
    const uint64_t e = c.entered.value.load(std::memory_order_acquire);
    peers[r].known = true;
    peers[r].entered = unpack_seq(e);
    peers[r].entered_kind = unpack_kind(e);
    peers[r].completed = c.completed.value.load(std::memory_order_acquire);
    peers[r].failed = c.failed.value.load(std::memory_order_acquire);
  }
  return peers;
}

void MpiCommunicator::timed_out(const MpiRun& run) {
  const auto peers = peer_statuses(kQueryBudget);
  set_failed(run.seq);
  throw TimeoutError(timeout_report({"mpi", name(), rank(), size()}, run.kind, run.seq, run.timeout, peers), __FILE__,
                     __LINE__);
}

// A peer that gave up will never finish this collective: fail now instead of at the deadline.
void MpiCommunicator::check_peers(const MpiRun& run) {
  if (!shm_) return;
  for (int r = 0; r < size(); ++r) {
    const uint64_t f = shm_->counters(r).failed.value.load(std::memory_order_acquire);
    if (r != rank() && f != 0) {
      set_failed(run.seq);
      COHORT_THROW(CommError, "mpi group '", name(), "': ", collective_name(run.kind), " #", run.seq, " on rank ",
                   rank(), " cannot complete: rank ", r, " gave up on collective #", f,
                   " (its own error says why, usually a timeout naming the rank that never arrived)");
    }
  }
}

// How a rank waits for its peers. It spins: the peer is usually a few hundred nanoseconds behind,
// and giving the core away (sched_yield on a busy machine hands it to another process for a whole
// time slice) would cost far more. Only with more ranks than cores does it yield instead, since
// then the peer it waits for may need this very core. After 2 ms it naps, so a rank whose peer is
// busy computing does not burn a core meanwhile. And it naps at once when no caller is blocked
// in wait(): the operation is running on the progress thread while the caller computes (Ddp's
// buckets during backward), and spinning would take the core from that computation. Measured on
// 2 ranks x 1 core: spinning there made mlp's overlapped step 25% slower than no overlap.
void MpiCommunicator::pause(MpiRun& run, uint64_t iteration, Clock::time_point& slow_since) {
  if (iteration < 64) {
    COHORT_CPU_RELAX();
    return;
  }
  const auto now = Clock::now();
  if (iteration == 64) {
    slow_since = now;
    if (run.deadline == Clock::time_point{}) run.deadline = deadline_after(run.timeout, now);
  }
  if ((iteration & 15) == 0) {
    if (now >= run.deadline) timed_out(run);
    check_peers(run);
    if (!shm_ && (iteration & 1023) == 0) query_->serve();
  }
  const auto waited = now - slow_since;
  const bool caller_waits = queue_->has_waiters();
  if (waited < spin_window_ && caller_waits) {
    COHORT_CPU_RELAX();
  } else if (waited < Milliseconds(2) && caller_waits) {
    sched_yield();
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    if (!shm_) query_->serve();
  }
}

// ---- running collectives ----

// Large collectives start now, on the progress thread; small ones wait for a wait() (or a tick).
WorkPtr MpiCommunicator::submit(Collective kind, uint64_t seq, size_t bytes, const OpArgs& args) {
  auto work = std::allocate_shared<QueuedWork>(ArenaAllocator<QueuedWork>(queue_->arena()), queue_, this, kind, seq, args);
  queue_->submit(work, bytes >= options_.async_bytes);
  return work;
}

void MpiCommunicator::execute(const std::shared_ptr<QueuedWork>& work) {
  const OpArgs& a = work->args();
  MpiRun run{work->collective(), work->seq(), a.timeout};
  set_entered(run.seq, run.kind);
  try {
    if (shm_) {
      check_peers(run);  // a peer that gave up may have staged its data before it left
      RunWaiter waiter(*this, run);
      run_shm(run.kind, a, waiter);
    } else {
      NativePoll poll;
      Clock::time_point slow_since;
      poll.pause = [this, &run, &slow_since](uint64_t it) { pause(run, it, slow_since); };
      // An abandoned MPI request may still write the buffers, which the work keeps alive.
      poll.keep_alive.push_back(work);
      run_native(run.kind, a, poll);
    }
  } catch (...) {
    set_failed(run.seq);
    throw;
  }
  set_completed(run.seq);
}

std::string MpiCommunicator::describe_wait_timeout(const QueuedWork& work, Milliseconds waited) {
  return timeout_report({"mpi", name(), rank(), size()}, work.collective(), work.seq(), waited,
                        peer_statuses(kQueryBudget)) +
         " (only this wait() gave up; the collective is still running)";
}

}  // namespace cohort::parallel::detail
