// What one nccl communicator and its Works share (implementation-only header): the NCCL handle, its
// stream, the operations in flight and the watchdog thread that enforces their timeouts.
//
// Streams and events. An operation is issued from the caller's thread: an event (`ready`) is
// recorded on that thread's current stream of the device (cuda::current_stream, where cohort's
// kernels run), the NCCL stream waits for it, the NCCL call is queued on the NCCL stream, and a
// second event (`InFlight::done`) is recorded after it. Work::wait() makes the waiting thread's
// current stream wait for `done`; nothing here blocks the host except synchronize() and the
// destructor.
//
// Lifetimes. Every operation is an InFlight in `in_flight` until the stream has passed its `done`
// event; the tensors it reads and writes are held there, so dropping a Work (or the last handle to
// a tensor) while NCCL still uses the memory cannot hand that memory to someone else. Finished
// operations are reaped on the issuing thread (the next issue, wait or is_completed), never on the
// watchdog, so tensors are only ever released by the thread that uses them.
//
// Timeouts and failures. The watchdog polls the oldest unfinished operation's event (events on one
// stream complete in order) and the communicator's asynchronous error every few milliseconds while
// anything is in flight. When an operation's deadline passes, or NCCL reports an error, it records
// the failure (the timeout report names the ranks that never arrived, from the store's status
// board) and aborts the NCCL communicator (ncclCommAbort), so the kernels stop instead of spinning
// forever and every stream waiting on them moves on. From then on every operation and every
// unfinished Work of the communicator throws. `finished` (set under the mutex, before any failure)
// is what counts: after an abort the events fire too, but the data they guard is not a result.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../arrival_report-impl.h"
#include "../deadline-impl.h"
#include "../status_board-impl.h"
#include "cohort/core/tensor.h"
#include "cohort/parallel/comm/errors.h"

namespace cohort::parallel::detail {

// Makes `device` the calling thread's current CUDA device and restores the previous one: the
// current device is per thread and belongs to the caller.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device);
  ~CudaDeviceGuard();
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// One operation queued on the NCCL stream.
struct InFlight {
  Collective kind = Collective::all_reduce;
  uint64_t seq = 0;
  bool collective = true;  // counts on the status board (send/recv do not)
  Milliseconds timeout{0};
  Clock::time_point deadline;
  int device = 0;
  cudaEvent_t done = nullptr;   // recorded on the NCCL stream right after the operation
  std::vector<Tensor> tensors;  // what it reads and writes, held until `done` has happened
  bool finished = false;        // `done` observed before any failure (under NcclState::mutex)

  InFlight() = default;
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  ~InFlight();
};

enum class Failure : uint8_t { none, timeout, error };

struct NcclState {
  int rank = 0, size = 1, device = 0;
  std::string name;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // the communicator's own stream (non-blocking, high priority)
  cudaEvent_t ready = nullptr;    // recorded on the caller's current stream before each operation
  void* scratch = nullptr;        // one int for barrier (NCCL has none: an all-reduce of one element)
  std::unique_ptr<StatusBoard> board;
  std::atomic<uint64_t> entered{0}, completed{0}, failed{0};

  std::mutex mutex;
  std::condition_variable changed;  // an operation was queued, a launch ended, or stop
  // Under `mutex`:
  std::deque<std::shared_ptr<InFlight>> in_flight;  // in issue order = completion order
  bool launching = false;     // an NCCL call on `comm` is running on the issuing thread
  Failure failure = Failure::none;
  std::string failure_report;
  const InFlight* failed_op = nullptr;  // the operation that timed out (an identity, never read)
  bool comm_aborted = false;  // ncclCommAbort was called (the destructor must not destroy it again)
  bool stop = false;
  std::thread watchdog;

  NcclState() = default;
  NcclState(const NcclState&) = delete;
  NcclState& operator=(const NcclState&) = delete;
  ~NcclState();

  void init_resources();  // device, stream, event, scratch; before the NCCL handle exists
  void start_watchdog();  // once `comm` is set

  // ---- on the issuing thread ----
  // Throws CommError (TimeoutError after a timeout) when the communicator has failed.
  void check_usable();
  // Brackets every NCCL call on `comm` from the issuing thread, so an abort never runs during one.
  // begin_launch throws like check_usable; end_launch queues `op` (may be null) for the watchdog.
  void begin_launch();
  void end_launch(std::shared_ptr<InFlight> op);
  // Releases operations the stream has passed (and their tensors), oldest first.
  void reap();

  // ---- on any thread ----
  // Whether `op` finished successfully (true), is still running (false), or failed (throws, with
  // the failure's report). Never blocks on the device.
  bool poll(const InFlight& op);
  // Marks the communicator failed and aborts it; later calls are no-ops. With `op` (a timeout), it
  // does nothing when `op` finished after all; otherwise `op`'s Work throws TimeoutError with the
  // report and every other operation CommError.
  void fail(Failure kind, const std::string& report, const InFlight* op);
  // The timeout report for an operation, built from the status board when there is one.
  std::string timeout_report_for(Collective kind, uint64_t seq, Milliseconds waited);
  PeerStatus status() const;
  void publish_status();

 private:
  cudaError_t sweep_locked();  // marks operations whose events have happened, oldest first
  [[noreturn]] void throw_failure_locked(const InFlight* op) const;
  void watch();         // the watchdog thread
  std::vector<PeerStatus> peers();
};

}  // namespace cohort::parallel::detail
