// NcclState: the operations in flight on one nccl communicator, the watchdog that enforces their
// timeouts, and the abort. See nccl_state-impl.h for the design.
#include "nccl_state-impl.h"

#include <algorithm>
#include <chrono>

#include "nccl_check-impl.h"

namespace cohort::parallel::detail {
namespace {

// How often the watchdog looks at the stream while something is in flight (a timeout is noticed
// this late at most), and how often at most it tells the status board where this rank is.
constexpr auto kPollInterval = std::chrono::milliseconds(2);
constexpr auto kPublishInterval = std::chrono::milliseconds(500);
// How long an abort waits for an NCCL call that is running on the issuing thread to return. A call
// still running after this is stuck behind the hang itself, and the abort is what releases it.
constexpr auto kLaunchGrace = std::chrono::seconds(10);

// cudaEventQuery/cudaStreamQuery answer "not ready" as an error code; keep it out of the thread's
// last-error slot so the next CUDA check does not report it.
cudaError_t query_event(cudaEvent_t e) {
  const cudaError_t q = cudaEventQuery(e);
  if (q == cudaErrorNotReady) cudaGetLastError();
  return q;
}

cudaError_t query_stream(cudaStream_t s) {
  const cudaError_t q = cudaStreamQuery(s);
  if (q == cudaErrorNotReady) cudaGetLastError();
  return q;
}

std::string describe_op(Collective kind, uint64_t seq) { return str_cat(collective_name(kind), " #", seq); }

}  // namespace

CudaDeviceGuard::CudaDeviceGuard(int device) {
  int current = -1;
  if (cudaGetDevice(&current) != cudaSuccess) {
    cudaGetLastError();
    current = -1;
  }
  if (current != device) {
    cudaSetDevice(device);  // a failure shows up in the next checked call
    previous_ = current;
  }
}

CudaDeviceGuard::~CudaDeviceGuard() {
  if (previous_ >= 0) cudaSetDevice(previous_);
}

InFlight::~InFlight() {
  // Safe even if the stream has not reached it: CUDA releases the event once it has.
  if (done) {
    CudaDeviceGuard guard(device);
    cudaEventDestroy(done);
  }
}

void NcclState::init_resources() {
  CudaDeviceGuard guard(device);
  // The highest priority the device offers: communication kernels are scheduled ahead of compute
  // kernels queued at the same time, so a bucket's all-reduce is not starved by backward.
  int least = 0, greatest = 0;
  COHORT_CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&least, &greatest));
  COHORT_CUDA_CHECK(cudaStreamCreateWithPriority(&stream, cudaStreamNonBlocking, greatest));
  COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
  COHORT_CUDA_CHECK(cudaMalloc(&scratch, sizeof(int)));
  COHORT_CUDA_CHECK(cudaMemsetAsync(scratch, 0, sizeof(int), stream));
}

void NcclState::start_watchdog() {
  watchdog = std::thread([this] { watch(); });
}

NcclState::~NcclState() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stop = true;
  }
  changed.notify_all();
  if (watchdog.joinable()) watchdog.join();
  CudaDeviceGuard guard(device);
  if (comm != nullptr && !comm_aborted) {
    // Operations still queued finish first (results someone may still read), but not past their
    // own deadlines: ncclCommDestroy would wait for a hung one forever, ncclCommAbort stops it.
    Clock::time_point until = Clock::now();
    for (const auto& op : in_flight) {
      if (!op->finished) until = std::max(until, op->deadline);
    }
    while (stream != nullptr && query_stream(stream) == cudaErrorNotReady && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    if (stream == nullptr || query_stream(stream) == cudaSuccess) {
      ncclCommDestroy(comm);
    } else {
      ncclCommAbort(comm);
    }
  }
  in_flight.clear();
  if (ready) cudaEventDestroy(ready);
  if (stream) cudaStreamDestroy(stream);
  if (scratch) cudaFree(scratch);
  cudaGetLastError();
}

void NcclState::throw_failure_locked(const InFlight* op) const {
  if (failure == Failure::timeout && op != nullptr && op == failed_op) {
    throw TimeoutError(failure_report, __FILE__, __LINE__);
  }
  throw CommError(str_cat("nccl group '", name, "' is unusable: it was aborted after ", failure_report,
                          op != nullptr ? str_cat("; ", describe_op(op->kind, op->seq), " did not complete") : ""),
                  __FILE__, __LINE__);
}

void NcclState::check_usable() {
  std::lock_guard<std::mutex> lock(mutex);
  if (failure != Failure::none) throw_failure_locked(nullptr);
}

void NcclState::begin_launch() {
  std::lock_guard<std::mutex> lock(mutex);
  if (failure != Failure::none) throw_failure_locked(nullptr);
  launching = true;
}

void NcclState::end_launch(std::shared_ptr<InFlight> op) {
  {
    std::lock_guard<std::mutex> lock(mutex);
    launching = false;
    if (op) in_flight.push_back(std::move(op));
  }
  changed.notify_all();
}

cudaError_t NcclState::sweep_locked() {
  if (failure != Failure::none) return cudaSuccess;  // after an abort events fire without results
  for (const auto& op : in_flight) {
    if (op->finished) continue;
    const cudaError_t q = query_event(op->done);
    if (q == cudaErrorNotReady) break;  // the later ones are queued behind it on the same stream
    if (q != cudaSuccess) return q;
    op->finished = true;
    if (op->collective) completed.store(op->seq);
  }
  return cudaSuccess;
}

void NcclState::reap() {
  std::vector<std::shared_ptr<InFlight>> released;  // destroyed after the lock is gone
  {
    std::lock_guard<std::mutex> lock(mutex);
    sweep_locked();  // an error here is the watchdog's to report
    while (!in_flight.empty()) {
      const auto& op = in_flight.front();
      // After an abort, an operation the stream has moved past no longer touches its memory.
      const bool passed = op->finished || (failure != Failure::none && query_event(op->done) != cudaErrorNotReady);
      if (!passed) break;
      released.push_back(in_flight.front());
      in_flight.pop_front();
    }
  }
}

bool NcclState::poll(const InFlight& op) {
  cudaError_t err = cudaSuccess;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (op.finished) return true;
    if (failure != Failure::none) throw_failure_locked(&op);
    err = sweep_locked();
    if (op.finished) return true;
  }
  if (err != cudaSuccess) {
    fail(Failure::error,
         str_cat(describe_op(op.kind, op.seq), ": the CUDA stream failed: ", cudaGetErrorName(err), " (",
                 cudaGetErrorString(err), ")"),
         nullptr);
    std::lock_guard<std::mutex> lock(mutex);
    throw_failure_locked(&op);
  }
  return false;
}

void NcclState::fail(Failure kind, const std::string& report, const InFlight* op) {
  {
    std::unique_lock<std::mutex> lock(mutex);
    if (failure != Failure::none) return;
    sweep_locked();  // what did finish before this point is not failed by it
    if (op != nullptr) {
      // The watchdog names the operation outside the lock: it may have finished (or been reaped)
      // since. Compared as an address only until it is found still in flight.
      const auto it = std::find_if(in_flight.begin(), in_flight.end(), [&](const auto& p) { return p.get() == op; });
      if (it == in_flight.end() || (*it)->finished) return;
    }
    failure = kind;
    failure_report = report;
    failed_op = op;
    failed.store(op != nullptr ? op->seq : std::max<uint64_t>(completed.load() + 1, 1));
    changed.wait_for(lock, kLaunchGrace, [&] { return !launching; });
    comm_aborted = true;
  }
  changed.notify_all();
  // The kernels of every queued operation stop, and every stream waiting on their events moves on.
  if (comm != nullptr) ncclCommAbort(comm);
  publish_status();
}

PeerStatus NcclState::status() const {
  PeerStatus s;
  s.known = true;
  const uint64_t e = entered.load();
  s.entered = unpack_seq(e);
  s.entered_kind = unpack_kind(e);
  s.completed = completed.load();
  s.failed = failed.load();
  return s;
}

void NcclState::publish_status() {
  if (!board) return;
  try {
    board->publish(status());
  } catch (const CommError&) {
    // the store is gone: peers will report this rank as not answering
  }
}

std::vector<PeerStatus> NcclState::peers() {
  if (board) {
    try {
      board->publish(status());
      return board->read_all();
    } catch (const CommError&) {
    }
  }
  std::vector<PeerStatus> all(size);
  all[rank] = status();
  return all;
}

std::string NcclState::timeout_report_for(Collective kind, uint64_t seq, Milliseconds waited) {
  return timeout_report({"nccl", name, rank, size}, kind, seq, waited, peers());
}

void NcclState::watch() {
  cudaSetDevice(device);  // this thread's own: the events and the handle live on the device
  auto last_publish = Clock::now() - kPublishInterval;
  PeerStatus published;  // what the board last got from this rank
  std::unique_lock<std::mutex> lock(mutex);
  while (!stop) {
    const bool busy = failure == Failure::none &&
                      std::any_of(in_flight.begin(), in_flight.end(), [](const auto& op) { return !op->finished; });
    if (busy) {
      const cudaError_t err = sweep_locked();
      ncclResult_t async = ncclSuccess;
      if (err == cudaSuccess) ncclCommGetAsyncError(comm, &async);
      // The oldest unfinished operation names an asynchronous failure; the earliest deadline a timeout.
      const InFlight* oldest = nullptr;
      const InFlight* expired = nullptr;
      const auto now = Clock::now();
      for (const auto& op : in_flight) {
        if (op->finished) continue;
        if (oldest == nullptr) oldest = op.get();
        if (op->deadline <= now && (expired == nullptr || op->deadline < expired->deadline)) expired = op.get();
      }
      if (err != cudaSuccess || (async != ncclSuccess && async != ncclInProgress)) {
        const std::string what = oldest ? describe_op(oldest->kind, oldest->seq) : std::string("an operation");
        const std::string reason =
            err != cudaSuccess
                ? str_cat(what, ": the CUDA stream failed: ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ")")
                : str_cat(what, " failed asynchronously: ", ncclGetErrorString(async), " (", ncclGetLastError(comm),
                          ")");
        lock.unlock();
        fail(Failure::error, str_cat("nccl group '", name, "' on rank ", rank, ": ", reason), nullptr);
        lock.lock();
        continue;
      }
      if (expired != nullptr) {
        const Collective kind = expired->kind;
        const uint64_t seq = expired->seq;
        const Milliseconds timeout = expired->timeout;
        lock.unlock();
        fail(Failure::timeout, timeout_report_for(kind, seq, timeout), expired);  // `expired` only as an identity
        lock.lock();
        continue;
      }
    }
    // Where this rank is, for a peer's timeout report: at most every kPublishInterval, and once
    // more after the last change, so an idle rank's board shows the last collective it finished.
    const PeerStatus now_status = status();
    const bool changed_since = now_status.entered != published.entered || now_status.completed != published.completed ||
                               now_status.failed != published.failed;
    if (board && changed_since && Clock::now() - last_publish >= kPublishInterval) {
      last_publish = Clock::now();
      published = now_status;
      lock.unlock();
      publish_status();
      lock.lock();
      continue;
    }
    if (busy) {
      changed.wait_for(lock, kPollInterval);
    } else if (board && changed_since) {
      changed.wait_until(lock, last_publish + kPublishInterval);
    } else {
      changed.wait(lock);
    }
  }
}

}  // namespace cohort::parallel::detail
