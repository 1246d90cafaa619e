// The nccl backend. Each collective is launched on the communicator's own stream after an event
// makes that stream wait for the work already queued on the device's default stream; a second
// event marks its end, and the Work polls that event (never blocking in CUDA), so the timeout holds:
// when it passes, the NCCL communicator is aborted (ncclCommAbort) rather than left hanging, and
// the report names the ranks that never arrived, as far as the store's status board knows.
#include <nccl.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "../arrival_report-impl.h"
#include "../deadline-impl.h"
#include "../status_board-impl.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "nccl_check-impl.h"

namespace cohort::parallel {
namespace detail {
namespace {

ncclDataType_t nccl_type(DType d) {
  switch (d) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::bf16: return ncclBfloat16;
    case DType::f16: return ncclFloat16;
    case DType::i32: return ncclInt32;
    case DType::i64: return ncclInt64;
    case DType::boolean: return ncclUint8;
  }
  return ncclUint8;
}

ncclRedOp_t nccl_op(DType d, ReduceOp op) {
  if (d == DType::boolean) return op == ReduceOp::min ? ncclMin : ncclMax;  // and / or on 0-1 bytes
  switch (op) {
    case ReduceOp::sum: return ncclSum;
    case ReduceOp::avg: return ncclAvg;
    case ReduceOp::max: return ncclMax;
    case ReduceOp::min: return ncclMin;
  }
  return ncclSum;
}

void require_gpu(int device) {
  const int count = cuda_device_count();
  COHORT_CHECK(count > 0, DeviceError, "nccl communicator: ", cuda_unavailable_reason(),
               "; run on a node with a GPU, or use the mpi backend for host memory");
  COHORT_CHECK(device >= 0 && device < count, DeviceError, "nccl communicator: device index ", device,
               " but this node has ", count, " GPU(s) (pass the local rank modulo the GPU count)");
}

// What the communicator and its works share, so a Work may outlive its communicator.
struct NcclState {
  int rank = 0, size = 1, device = 0;
  std::string name;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  cudaEvent_t ready = nullptr;
  void* scratch = nullptr;  // one int for barrier (NCCL has none: an all-reduce of one element)
  std::mutex mutex;
  bool aborted = false;
  std::string abort_reason;
  std::atomic<uint64_t> entered{0}, completed{0}, failed{0};
  std::unique_ptr<StatusBoard> board;

  void init_resources() {
    COHORT_CUDA_CHECK(cudaSetDevice(device));
    COHORT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    COHORT_CUDA_CHECK(cudaMalloc(&scratch, sizeof(int)));
  }

  ~NcclState() {
    cudaSetDevice(device);
    if (comm && !aborted) ncclCommDestroy(comm);
    if (ready) cudaEventDestroy(ready);
    if (stream) cudaStreamDestroy(stream);
    if (scratch) cudaFree(scratch);
  }

  void abort(const std::string& reason) {
    std::lock_guard<std::mutex> lock(mutex);
    if (aborted) return;
    aborted = true;
    abort_reason = reason;
    ncclCommAbort(comm);
  }

  PeerStatus status() const {
    PeerStatus s;
    s.known = true;
    const uint64_t e = entered.load();
    s.entered = unpack_seq(e);
    s.entered_kind = unpack_kind(e);
    s.completed = completed.load();
    s.failed = failed.load();
    return s;
  }

  std::vector<PeerStatus> peers() {
    if (!board) {
      std::vector<PeerStatus> all(size);
      all[rank] = status();
      return all;
    }
    try {
      board->publish(status());
      return board->read_all();
    } catch (const CommError&) {
      std::vector<PeerStatus> all(size);
      all[rank] = status();
      return all;
    }
  }
};

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<NcclState> st, Collective kind, uint64_t seq, Milliseconds timeout, cudaEvent_t done,
           bool collective)
      : Work(kind, seq), st_(std::move(st)), timeout_(timeout), op_deadline_(deadline_after(timeout)), done_(done),
        collective_(collective) {}
  ~NcclWork() override {
    cudaSetDevice(st_->device);
    cudaEventDestroy(done_);
  }

  bool is_completed() override { return finished_ || poll(); }

  void wait(Milliseconds timeout) override {
    const auto start = Clock::now();
    const auto deadline = std::min(op_deadline_, deadline_after(timeout, start));
    auto last_publish = start;
    for (uint64_t it = 0; !poll(); ++it) {
      const auto now = Clock::now();
      if (now >= deadline) give_up(deadline == op_deadline_, elapsed_since(start));
      // Ranks blocked here tell the board where they are, so a peer's timeout report can say.
      if (st_->board && now - last_publish > Milliseconds(1000)) {
        last_publish = now;
        try {
          st_->board->publish(st_->status());
        } catch (const CommError&) {
        }
      }
      if (now - start > Milliseconds(1)) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      } else {
        std::this_thread::yield();
      }
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  bool poll() {
    if (finished_) return true;
    {
      std::lock_guard<std::mutex> lock(st_->mutex);
      if (st_->aborted) return finish(std::make_exception_ptr(CommError(
                 str_cat("nccl group '", st_->name, "' was aborted: ", st_->abort_reason), __FILE__, __LINE__)));
    }
    cudaSetDevice(st_->device);
    const cudaError_t q = cudaEventQuery(done_);
    if (q == cudaSuccess) {
      if (collective_) st_->completed.store(seq());
      return finish(nullptr);
    }
    if (q != cudaErrorNotReady) {
      return finish(std::make_exception_ptr(DeviceError(
          str_cat("nccl: ", describe(), ": cudaEventQuery failed: ", cudaGetErrorString(q)), __FILE__, __LINE__)));
    }
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(st_->comm, &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      const std::string reason =
          str_cat(describe(), " failed asynchronously: ", ncclGetErrorString(async), " (", ncclGetLastError(st_->comm), ")");
      st_->failed.store(seq());
      st_->abort(reason);
      return finish(std::make_exception_ptr(CommError("nccl group '" + st_->name + "': " + reason, __FILE__, __LINE__)));
    }
    return false;
  }

  bool finish(std::exception_ptr error) {
    error_ = error;
    finished_ = true;
    return true;
  }

  [[noreturn]] void give_up(bool op_timed_out, Milliseconds waited) {
    std::string report = timeout_report({"nccl", st_->name, st_->rank, st_->size}, collective(), seq(),
                                        op_timed_out ? timeout_ : waited, st_->peers());
    if (!op_timed_out) throw TimeoutError(report + " (only this wait() gave up)", __FILE__, __LINE__);
    st_->failed.store(seq());
    st_->abort(report);  // ncclCommAbort: the kernels stop instead of spinning forever
    finish(std::make_exception_ptr(TimeoutError(report, __FILE__, __LINE__)));
    std::rethrow_exception(error_);
  }

  std::shared_ptr<NcclState> st_;
  Milliseconds timeout_;
  Clock::time_point op_deadline_;
  cudaEvent_t done_;
  bool collective_;
  bool finished_ = false;
  std::exception_ptr error_;
};

int nccl_version() {
  int v = 0;
  ncclGetVersion(&v);
  return v;
}

class NcclCommunicator : public Communicator {
 public:
  // A new NCCL communicator from a unique id every rank received.
  NcclCommunicator(int rank, int size, int device, const ncclUniqueId& id, const std::string& name,
                   std::shared_ptr<Store> store)
      : Communicator(rank, size, name), st_(std::make_shared<NcclState>()), store_(std::move(store)) {
    st_->rank = rank, st_->size = size, st_->device = device, st_->name = name;
    st_->init_resources();
    COHORT_NCCL_CHECK(ncclCommInitRank(&st_->comm, size, id, rank));
    attach_board();
  }

  // Wraps a communicator ncclCommSplit made.
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, const std::string& name,
                   std::shared_ptr<Store> store)
      : Communicator(rank, size, name), st_(std::make_shared<NcclState>()), store_(std::move(store)) {
    st_->rank = rank, st_->size = size, st_->device = device, st_->name = name;
    st_->comm = comm;
    st_->init_resources();
    attach_board();
  }

  const char* backend() const override { return "nccl"; }
  Device device() const override { return Device::cuda(st_->device); }
  std::string description() const override {
    const int v = nccl_version();
    return str_cat("nccl ", v / 10000, ".", v / 100 % 100, ".", v % 100, " on cuda:", st_->device);
  }

 protected:
  WorkPtr do_all_reduce(const void* in, void* out, int64_t count, DType dtype, const AllReduceOptions& o,
                        uint64_t seq) override {
    return enqueue(Collective::all_reduce, seq, o.timeout, true, [&] {
      COHORT_NCCL_CHECK(ncclAllReduce(in, out, static_cast<size_t>(count), nccl_type(dtype), nccl_op(dtype, o.op),
                                      st_->comm, st_->stream));
    });
  }
  WorkPtr do_broadcast(const void* in, void* out, int64_t count, DType dtype, const BroadcastOptions& o,
                       uint64_t seq) override {
    return enqueue(Collective::broadcast, seq, o.timeout, true, [&] {
      COHORT_NCCL_CHECK(
          ncclBroadcast(in, out, static_cast<size_t>(count), nccl_type(dtype), o.root, st_->comm, st_->stream));
    });
  }
  WorkPtr do_all_gather(const void* in, void* out, int64_t count, DType dtype, const AllGatherOptions& o,
                        uint64_t seq) override {
    return enqueue(Collective::all_gather, seq, o.timeout, true, [&] {
      COHORT_NCCL_CHECK(ncclAllGather(in, out, static_cast<size_t>(count), nccl_type(dtype), st_->comm, st_->stream));
    });
  }
  WorkPtr do_reduce_scatter(const void* in, void* out, int64_t count, DType dtype, const ReduceScatterOptions& o,
                            uint64_t seq) override {
    return enqueue(Collective::reduce_scatter, seq, o.timeout, true, [&] {
      COHORT_NCCL_CHECK(ncclReduceScatter(in, out, static_cast<size_t>(count), nccl_type(dtype), nccl_op(dtype, o.op),
                                          st_->comm, st_->stream));
    });
  }
  WorkPtr do_barrier(const BarrierOptions& o, uint64_t seq) override {
    return enqueue(Collective::barrier, seq, o.timeout, true, [&] {
      COHORT_NCCL_CHECK(ncclAllReduce(st_->scratch, st_->scratch, 1, ncclInt32, ncclSum, st_->comm, st_->stream));
    });
  }
  WorkPtr do_send(const void* in, int64_t count, DType dtype, int dst, const SendOptions& o, uint64_t seq) override {
    COHORT_CHECK(o.tag == 0, ValueError, "nccl communicator: send tags are not supported (got tag ", o.tag,
                 "); messages to one peer match in order");
    return enqueue(Collective::send, seq, o.timeout, false, [&] {
      COHORT_NCCL_CHECK(ncclSend(in, static_cast<size_t>(count), nccl_type(dtype), dst, st_->comm, st_->stream));
    });
  }
  WorkPtr do_recv(void* out, int64_t count, DType dtype, int src, const RecvOptions& o, uint64_t seq) override {
    COHORT_CHECK(o.tag == 0, ValueError, "nccl communicator: recv tags are not supported (got tag ", o.tag,
                 "); messages from one peer match in order");
    return enqueue(Collective::recv, seq, o.timeout, false, [&] {
      COHORT_NCCL_CHECK(ncclRecv(out, static_cast<size_t>(count), nccl_type(dtype), src, st_->comm, st_->stream));
    });
  }

  std::shared_ptr<Communicator> do_split(int color, int key, const std::string& name, uint64_t seq) override {
    check_usable();
    st_->entered.store(pack_entered(seq, Collective::split));
    COHORT_CUDA_CHECK(cudaSetDevice(st_->device));
    ncclComm_t sub = nullptr;
    COHORT_NCCL_CHECK(ncclCommSplit(st_->comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &sub, nullptr));
    st_->completed.store(seq);
    if (sub == nullptr) return nullptr;
    int sub_rank = 0, sub_size = 0;
    COHORT_NCCL_CHECK(ncclCommUserRank(sub, &sub_rank));
    COHORT_NCCL_CHECK(ncclCommCount(sub, &sub_size));
    return std::make_shared<NcclCommunicator>(sub, sub_rank, sub_size, st_->device, name, store_);
  }

 private:
  void attach_board() {
    if (store_) {
      st_->board = std::make_unique<StatusBoard>(store_, "cohort/nccl/" + st_->name + "/status", st_->rank, st_->size);
    }
  }

  void check_usable() {
    std::lock_guard<std::mutex> lock(st_->mutex);
    COHORT_CHECK(!st_->aborted, CommError, "nccl group '", st_->name, "' is unusable: it was aborted after ",
                 st_->abort_reason);
  }

  template <class Launch>
  WorkPtr enqueue(Collective kind, uint64_t seq, Milliseconds timeout, bool collective, Launch&& launch) {
    check_usable();
    COHORT_CUDA_CHECK(cudaSetDevice(st_->device));
    // The collective must see what the default stream computed before it was issued.
    COHORT_CUDA_CHECK(cudaEventRecord(st_->ready, 0));
    COHORT_CUDA_CHECK(cudaStreamWaitEvent(st_->stream, st_->ready, 0));
    if (collective) st_->entered.store(pack_entered(seq, kind));
    launch();
    cudaEvent_t done = nullptr;
    COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    COHORT_CUDA_CHECK(cudaEventRecord(done, st_->stream));
    return std::make_shared<NcclWork>(st_, kind, seq, timeout, done, collective);
  }

  std::shared_ptr<NcclState> st_;
  std::shared_ptr<Store> store_;
};

}  // namespace
}  // namespace detail

std::shared_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device_index,
                                                     const NcclOptions& options) {
  detail::require_gpu(device_index);
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  if (bootstrap.rank() == 0) COHORT_NCCL_CHECK(ncclGetUniqueId(&id));
  static_assert(sizeof id % sizeof(int32_t) == 0, "the unique id travels as int32s");
  bootstrap.broadcast(&id, &id, sizeof id / sizeof(int32_t), DType::i32, {0, options.init_timeout})->wait();
  return std::make_shared<detail::NcclCommunicator>(bootstrap.rank(), bootstrap.size(), device_index, id, options.name,
                                                    nullptr);
}

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Store> store, int rank, int size,
                                                     int device_index, const NcclOptions& options) {
  COHORT_CHECK(store, ValueError, "make_nccl_communicator: the store is null");
  detail::require_gpu(device_index);
  const std::string key = "cohort/nccl/" + options.name + "/unique_id";
  ncclUniqueId id;
  if (rank == 0) {
    COHORT_NCCL_CHECK(ncclGetUniqueId(&id));
    store->set(key, std::string(reinterpret_cast<const char*>(&id), sizeof id));
  } else {
    const std::string bytes = store->get(key, options.init_timeout);
    COHORT_CHECK(bytes.size() == sizeof id, CommError, "nccl communicator '", options.name, "': the unique id in the ",
                 "store has ", bytes.size(), " bytes, expected ", sizeof id);
    std::memcpy(&id, bytes.data(), sizeof id);
  }
  return std::make_shared<detail::NcclCommunicator>(rank, size, device_index, id, options.name, std::move(store));
}

bool nccl_backend_built() { return true; }

}  // namespace cohort::parallel
