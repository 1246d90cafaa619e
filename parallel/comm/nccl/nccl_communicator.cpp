// The nccl backend: the communicator (issuing operations on its stream) and its Work. The stream
// and event protocol, the lifetimes of buffers in flight and the watchdog that aborts a timed-out
// communicator are in nccl_state-impl.h.
#include <nccl.h>

#include <cstring>
#include <thread>

#include "cohort/core/cuda.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "nccl_check-impl.h"
#include "nccl_state-impl.h"

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

cudaStream_t current_stream_of(int device) {
  return static_cast<cudaStream_t>(::cohort::cuda::current_stream(device).handle());
}

class NcclWork : public Work {
 public:
  NcclWork(std::shared_ptr<NcclState> st, std::shared_ptr<InFlight> op, bool host_blocking)
      : Work(op->kind, op->seq), st_(std::move(st)), op_(std::move(op)), host_blocking_(host_blocking) {}

  bool is_completed() override {
    try {
      return st_->poll(*op_);
    } catch (const Error&) {
      return true;  // failed: wait() throws at once
    }
  }

  // The operation's own deadline is checked here too (not only by the watchdog), so a wait() after
  // it throws the timeout report rather than queueing behind a collective that will never end.
  void wait(Milliseconds timeout) override {
    if (host_blocking_) return synchronize(timeout);
    st_->reap();  // earlier operations' tensors go now, on this thread
    if (st_->poll(*op_)) return;
    if (Clock::now() >= op_->deadline && time_out()) return;
    CudaDeviceGuard guard(st_->device);
    COHORT_CUDA_CHECK(cudaStreamWaitEvent(current_stream_of(st_->device), op_->done, 0));
  }

  void synchronize(Milliseconds timeout) override {
    const auto start = Clock::now();
    const auto deadline = std::min(op_->deadline, deadline_after(timeout, start));
    auto last_publish = start;
    while (!st_->poll(*op_)) {
      const auto now = Clock::now();
      if (now >= deadline) {
        if (deadline == op_->deadline) {
          if (time_out()) return;
          continue;
        }
        throw TimeoutError(st_->timeout_report_for(op_->kind, op_->seq, elapsed_since(start)) +
                               " (only this wait() gave up)",
                           __FILE__, __LINE__);
      }
      // Ranks blocked here tell the board where they are, so a peer's timeout report can say.
      if (now - last_publish > Milliseconds(1000)) {
        last_publish = now;
        st_->publish_status();
      }
      if (now - start > Milliseconds(1)) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      } else {
        std::this_thread::yield();
      }
    }
  }

  // Held by the operation (which the communicator keeps until the stream has passed it), not by
  // this Work: dropping the Work early must not free memory NCCL still reads or writes.
  void keep_alive(std::vector<Tensor> tensors) override {
    std::lock_guard<std::mutex> lock(st_->mutex);
    op_->tensors = std::move(tensors);
  }

 private:
  // The deadline passed: fail the communicator (unless the operation finished at the last moment,
  // then this returns true) and throw the TimeoutError.
  bool time_out() {
    st_->fail(Failure::timeout, st_->timeout_report_for(op_->kind, op_->seq, op_->timeout), op_.get());
    return st_->poll(*op_);
  }

  std::shared_ptr<NcclState> st_;
  std::shared_ptr<InFlight> op_;
  bool host_blocking_;  // barrier: the host waits, as a barrier promises
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
    CudaDeviceGuard guard(device);  // NCCL binds the communicator to the current device
    COHORT_NCCL_CHECK(ncclCommInitRank(&st_->comm, size, id, rank));
    attach_board();
    st_->start_watchdog();
  }

  // Wraps a communicator ncclCommSplit made.
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, const std::string& name,
                   std::shared_ptr<Store> store)
      : Communicator(rank, size, name), st_(std::make_shared<NcclState>()), store_(std::move(store)) {
    st_->rank = rank, st_->size = size, st_->device = device, st_->name = name;
    st_->comm = comm;
    st_->init_resources();
    attach_board();
    st_->start_watchdog();
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
    return enqueue(Collective::all_reduce, seq, o.timeout, true, false, [&] {
      COHORT_NCCL_CHECK(ncclAllReduce(in, out, static_cast<size_t>(count), nccl_type(dtype), nccl_op(dtype, o.op),
                                      st_->comm, st_->stream));
    });
  }
  WorkPtr do_broadcast(const void* in, void* out, int64_t count, DType dtype, const BroadcastOptions& o,
                       uint64_t seq) override {
    return enqueue(Collective::broadcast, seq, o.timeout, true, false, [&] {
      COHORT_NCCL_CHECK(
          ncclBroadcast(in, out, static_cast<size_t>(count), nccl_type(dtype), o.root, st_->comm, st_->stream));
    });
  }
  WorkPtr do_all_gather(const void* in, void* out, int64_t count, DType dtype, const AllGatherOptions& o,
                        uint64_t seq) override {
    return enqueue(Collective::all_gather, seq, o.timeout, true, false, [&] {
      COHORT_NCCL_CHECK(ncclAllGather(in, out, static_cast<size_t>(count), nccl_type(dtype), st_->comm, st_->stream));
    });
  }
  WorkPtr do_reduce_scatter(const void* in, void* out, int64_t count, DType dtype, const ReduceScatterOptions& o,
                            uint64_t seq) override {
    return enqueue(Collective::reduce_scatter, seq, o.timeout, true, false, [&] {
      COHORT_NCCL_CHECK(ncclReduceScatter(in, out, static_cast<size_t>(count), nccl_type(dtype), nccl_op(dtype, o.op),
                                          st_->comm, st_->stream));
    });
  }
  WorkPtr do_barrier(const BarrierOptions& o, uint64_t seq) override {
    return enqueue(Collective::barrier, seq, o.timeout, true, true, [&] {
      COHORT_NCCL_CHECK(ncclAllReduce(st_->scratch, st_->scratch, 1, ncclInt32, ncclSum, st_->comm, st_->stream));
    });
  }
  WorkPtr do_send(const void* in, int64_t count, DType dtype, int dst, const SendOptions& o, uint64_t seq) override {
    COHORT_CHECK(o.tag == 0, ValueError, "nccl communicator: send tags are not supported (got tag ", o.tag,
                 "); messages to one peer match in order");
    return enqueue(Collective::send, seq, o.timeout, false, false, [&] {
      COHORT_NCCL_CHECK(ncclSend(in, static_cast<size_t>(count), nccl_type(dtype), dst, st_->comm, st_->stream));
    });
  }
  WorkPtr do_recv(void* out, int64_t count, DType dtype, int src, const RecvOptions& o, uint64_t seq) override {
    COHORT_CHECK(o.tag == 0, ValueError, "nccl communicator: recv tags are not supported (got tag ", o.tag,
                 "); messages from one peer match in order");
    return enqueue(Collective::recv, seq, o.timeout, false, false, [&] {
      COHORT_NCCL_CHECK(ncclRecv(out, static_cast<size_t>(count), nccl_type(dtype), src, st_->comm, st_->stream));
    });
  }

  std::shared_ptr<Communicator> do_split(int color, int key, const std::string& name, uint64_t seq) override {
    CudaDeviceGuard guard(st_->device);
    ncclComm_t sub = nullptr;
    st_->begin_launch();
    st_->entered.store(pack_entered(seq, Collective::split));
    try {
      COHORT_NCCL_CHECK(ncclCommSplit(st_->comm, color < 0 ? NCCL_SPLIT_NOCOLOR : color, key, &sub, nullptr));
    } catch (...) {
      st_->end_launch(nullptr);
      throw;
    }
    st_->end_launch(nullptr);
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

  // Queues one operation: the NCCL stream waits for what the caller's current stream has queued
  // (the kernels that wrote the input), runs the operation, and records its end event.
  template <class Launch>
  WorkPtr enqueue(Collective kind, uint64_t seq, Milliseconds timeout, bool collective, bool host_blocking,
                  Launch&& launch) {
    st_->check_usable();
    st_->reap();
    CudaDeviceGuard guard(st_->device);
    auto op = std::make_shared<InFlight>();
    op->kind = kind;
    op->seq = seq;
    op->collective = collective;
    op->timeout = timeout;
    op->deadline = deadline_after(timeout);
    op->device = st_->device;
    COHORT_CUDA_CHECK(cudaEventCreateWithFlags(&op->done, cudaEventDisableTiming));
    COHORT_CUDA_CHECK(cudaEventRecord(st_->ready, current_stream_of(st_->device)));
    COHORT_CUDA_CHECK(cudaStreamWaitEvent(st_->stream, st_->ready, 0));
    st_->begin_launch();
    if (collective) st_->entered.store(pack_entered(seq, kind));
    try {
      launch();
      COHORT_CUDA_CHECK(cudaEventRecord(op->done, st_->stream));
    } catch (...) {
      st_->end_launch(nullptr);
      throw;
    }
    st_->end_launch(op);
    return std::make_shared<NcclWork>(st_, std::move(op), host_blocking);
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
  bootstrap.broadcast(&id, &id, sizeof id / sizeof(int32_t), DType::i32, {0, options.init_timeout})->synchronize();
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
