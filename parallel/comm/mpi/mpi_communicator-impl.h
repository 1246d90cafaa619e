// MpiCommunicator: the mpi backend's Communicator. Owns three duplicates of its MPI communicator
// (data: collectives and send/recv; ctrl: status queries; admin: split), the shared-memory
// segment when every rank is on this node, and the OpQueue with its progress thread.
#pragma once

#include <mpi.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "../arrival_report-impl.h"
#include "../deadline-impl.h"
#include "cohort/parallel/comm/communicator.h"
#include "cohort/parallel/comm/mpi_backend.h"
#include "native_collectives-impl.h"
#include "op_queue-impl.h"
#include "peer_query-impl.h"
#include "shm_collectives-impl.h"

namespace cohort::parallel::detail {

class MpiP2pWork;

// The collective being run: its identity and deadline. The deadline is set the first time the
// collective has to wait for a peer (reading the clock costs as much as a whole small all-reduce).
struct MpiRun {
  Collective kind;
  uint64_t seq;
  Milliseconds timeout;
  Clock::time_point deadline{};  // unset until the first slow wait
};

class MpiCommunicator : public Communicator, public OpExecutor {
 public:
  // Collective over `parent`, which it duplicates (the caller keeps and frees `parent`).
  MpiCommunicator(MPI_Comm parent, const std::string& name, const MpiOptions& options);
  ~MpiCommunicator() override;

  const char* backend() const override { return "mpi"; }
  Device device() const override { return Device::cpu(); }
  std::string description() const override;

  // For the running body's waits: back off, answer status queries, throw at the deadline or when
  // a peer gave up.
  void pause(MpiRun& run, uint64_t iteration, Clock::time_point& slow_since);
  [[noreturn]] void timed_out(const MpiRun& run);
  std::vector<PeerStatus> peer_statuses(Milliseconds budget);
  std::string report_context_name() const;

 protected:
  WorkPtr do_all_reduce(const void* in, void* out, int64_t count, DType dtype, const AllReduceOptions& o,
                        uint64_t seq) override;
  WorkPtr do_broadcast(const void* in, void* out, int64_t count, DType dtype, const BroadcastOptions& o,
                       uint64_t seq) override;
  WorkPtr do_all_gather(const void* in, void* out, int64_t count, DType dtype, const AllGatherOptions& o,
                        uint64_t seq) override;
  WorkPtr do_reduce_scatter(const void* in, void* out, int64_t count, DType dtype, const ReduceScatterOptions& o,
                            uint64_t seq) override;
  WorkPtr do_barrier(const BarrierOptions& o, uint64_t seq) override;
  WorkPtr do_send(const void* in, int64_t count, DType dtype, int dst, const SendOptions& o, uint64_t seq) override;
  WorkPtr do_recv(void* out, int64_t count, DType dtype, int src, const RecvOptions& o, uint64_t seq) override;
  std::shared_ptr<Communicator> do_split(int color, int key, const std::string& name, uint64_t seq) override;

 private:
  WorkPtr submit(Collective kind, uint64_t seq, size_t bytes, const OpArgs& args);
  void execute(const std::shared_ptr<QueuedWork>& work) override;
  std::string describe_wait_timeout(const QueuedWork& work, Milliseconds waited) override;
  void run_shm(Collective kind, const OpArgs& a, ShmWaiter& w);
  void run_native(Collective kind, const OpArgs& a, NativePoll& p);
  void set_entered(uint64_t seq, Collective kind);
  void set_completed(uint64_t seq);
  void set_failed(uint64_t seq);
  PeerStatus my_status() const;
  void check_peers(const MpiRun& run);
  void idle();

  MpiOptions options_;
  Clock::duration spin_window_{};  // how long a waiting rank spins before it yields
  MPI_Comm data_ = MPI_COMM_NULL, ctrl_ = MPI_COMM_NULL, admin_ = MPI_COMM_NULL;
  std::unique_ptr<ShmSegment> shm_;
  std::unique_ptr<ShmCollectives> shm_coll_;
  std::unique_ptr<NativeCollectives> native_;
  std::unique_ptr<PeerQuery> query_;
  std::atomic<uint64_t> entered_{0}, completed_{0}, failed_{0};
  std::mutex p2p_mutex_;
  std::vector<std::weak_ptr<MpiP2pWork>> p2p_;  // outstanding sends/recvs the progress thread tests
  std::shared_ptr<OpQueue> queue_;
};

}  // namespace cohort::parallel::detail
