// The nccl backend on real GPUs: one rank per visible GPU, as threads of this process, meeting
// through an in-process store (one GPU: a world of one, which is what a single-GPU machine runs).
//   - every collective and dtype against the reference, on raw device pointers and on CUDA tensors;
//   - CPU tensors refused with a DeviceError;
//   - stream order: a kernel queued on the current stream (a non-default one) right before the
//     collective is seen by it, and one queued right after wait() sees its result;
//   - lifetimes: tensors of an operation in flight are held even when the caller drops them and
//     the Work, and a communicator destroyed with work queued lets it finish;
//   - with two or more GPUs: send/recv, and the timeout report and abort by the watchdog while
//     nobody waits.
// Exits 77 (ctest: skipped) when there is no GPU. No test framework: a GPU machine may have none.
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cohort/core/core.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "reference.h"

using namespace cohort;
using namespace cohort::parallel;
using namespace cohort::parallel::testing;

namespace {

std::mutex out_mutex;
int failures = 0;

void fail(int rank, const std::string& what) {
  std::lock_guard<std::mutex> lock(out_mutex);
  std::fprintf(stderr, "[rank %d] FAIL: %s\n", rank, what.c_str());
  ++failures;
}

void note(int rank, const std::string& what) {
  std::lock_guard<std::mutex> lock(out_mutex);
  std::printf("[rank %d] %s\n", rank, what.c_str());
  std::fflush(stdout);
}

struct DeviceBuf {
  explicit DeviceBuf(size_t bytes) { cudaMalloc(&p, bytes + 16); }
  ~DeviceBuf() { cudaFree(p); }
  void* p = nullptr;
};

// A host tensor of `n` reference values for `rank`, then moved to `device`.
Tensor reference_tensor(int64_t n, DType dt, int rank, int salt, const Device& device, int64_t offset = 0) {
  Tensor h = Tensor::empty({n}, dt);
  fill_input(h.raw_data(), n, dt, rank, salt, offset);
  return h.to(device);
}

// Keeps the current stream busy for a few milliseconds (memory-bound elementwise ops on 128 MB), so
// that anything that does not wait for it runs first and shows.
void delay(const Device& device) {
  Tensor x = full({32 << 20}, 1.0, TensorOptions(DType::f32).with_device(device));
  for (int i = 0; i < 20; ++i) x = x * 1.0001 + 0.5;
}

// ---- raw device pointers (the way benchmarks call it) ----
void raw_buffers(Communicator& comm, int rank, int size, int& salt) {
  for (DType dt : all_dtypes()) {
    const size_t es = element_size(dt);
    for (ReduceOp op : ops_for(dt)) {
      for (int64_t n : {1, 7, 4099, 1 << 20}) {
        ++salt;
        std::vector<char> host(n * es), back(n * es);
        fill_input(host.data(), n, dt, rank, salt);
        DeviceBuf d(n * es);
        cudaMemcpy(d.p, host.data(), n * es, cudaMemcpyHostToDevice);
        comm.all_reduce(d.p, d.p, n, dt, {op})->wait();  // the legacy stream (current) waits for it
        cudaMemcpy(back.data(), d.p, n * es, cudaMemcpyDeviceToHost);
        std::string first;
        if (count_wrong(back.data(), n, dt, [&](int64_t i) { return expected_reduce(op, size, i, dt, salt); }, &first)) {
          fail(rank, std::string("raw all_reduce ") + dtype_name(dt) + " " + reduce_op_name(op) + ": " + first);
        }
      }
    }
    const int64_t n = 4099;
    std::vector<char> host(n * es), back(size * n * es);
    fill_input(host.data(), n, dt, rank, ++salt);
    DeviceBuf in(n * es), out(size * n * es);
    cudaMemcpy(in.p, host.data(), n * es, cudaMemcpyHostToDevice);
    comm.all_gather(in.p, out.p, n, dt)->wait();
    cudaMemcpy(back.data(), out.p, size * n * es, cudaMemcpyDeviceToHost);
    if (count_wrong(back.data(), size * n, dt, [&](int64_t i) { return input_value(int(i / n), i % n, dt, salt); })) {
      fail(rank, std::string("raw all_gather ") + dtype_name(dt));
    }
    comm.broadcast(in.p, out.p, n, dt, {0})->synchronize();  // the host-blocking form
    cudaMemcpy(back.data(), out.p, n * es, cudaMemcpyDeviceToHost);
    if (count_wrong(back.data(), n, dt, [&](int64_t i) { return input_value(0, i, dt, salt); })) {
      fail(rank, std::string("raw broadcast ") + dtype_name(dt));
    }
  }
}

// ---- CUDA tensors through the ordinary Tensor API ----
void tensors(Communicator& comm, int rank, int size, int& salt) {
  const Device dev = Device::cuda(rank);
  for (DType dt : all_dtypes()) {
    for (ReduceOp op : ops_for(dt)) {
      for (int64_t n : {1, 4099, 1 << 18}) {
        ++salt;
        Tensor t = reference_tensor(n, dt, rank, salt, dev);
        comm.all_reduce(t, {op})->wait();
        const Tensor back = t.to(Device::cpu());  // queued on the current stream, after the wait
        std::string first;
        if (count_wrong(back.raw_data(), n, dt, [&](int64_t i) { return expected_reduce(op, size, i, dt, salt); },
                        &first)) {
          fail(rank, std::string("tensor all_reduce ") + dtype_name(dt) + " " + reduce_op_name(op) + ": " + first);
        }
      }
      // reduce_scatter: rank r gets the reduction of block r.
      const int64_t n = 1031;
      ++salt;
      Tensor in = reference_tensor(n * size, dt, rank, salt, dev);
      Tensor out = zeros({n}, TensorOptions(dt).with_device(dev));
      comm.reduce_scatter(out, in, {op})->wait();
      const Tensor back = out.to(Device::cpu());
      if (count_wrong(back.raw_data(), n, dt,
                      [&](int64_t i) { return expected_reduce(op, size, rank * n + i, dt, salt); })) {
        fail(rank, std::string("tensor reduce_scatter ") + dtype_name(dt) + " " + reduce_op_name(op));
      }
    }
    const int64_t n = 4099;
    ++salt;
    Tensor in = reference_tensor(n, dt, rank, salt, dev);
    Tensor all = zeros({size * n}, TensorOptions(dt).with_device(dev));
    comm.all_gather(all, in)->wait();
    Tensor back = all.to(Device::cpu());
    if (count_wrong(back.raw_data(), size * n, dt, [&](int64_t i) { return input_value(int(i / n), i % n, dt, salt); })) {
      fail(rank, std::string("tensor all_gather ") + dtype_name(dt));
    }
    const int root = size - 1;
    comm.broadcast(in, {root})->wait();
    back = in.to(Device::cpu());
    if (count_wrong(back.raw_data(), n, dt, [&](int64_t i) { return input_value(root, i, dt, salt); })) {
      fail(rank, std::string("tensor broadcast ") + dtype_name(dt));
    }
  }
  // A view that is contiguous (a slice of a 1-D tensor) goes in place.
  Tensor big = full({300}, 1.0, TensorOptions(DType::f32).with_device(dev));
  Tensor mid = big.slice(0, 100, 200);
  comm.all_reduce(mid)->wait();
  const Tensor b = big.to(Device::cpu());
  const float* p = b.data_ptr<float>();
  if (p[99] != 1.0f || p[100] != static_cast<float>(size) || p[199] != static_cast<float>(size) || p[200] != 1.0f) {
    fail(rank, "all_reduce of a slice touched memory outside it, or missed some");
  }
}

void refusals(Communicator& comm, int rank) {
  Tensor cpu = ones({4});
  try {
    comm.all_reduce(cpu);
    fail(rank, "a CPU tensor was accepted by the nccl communicator");
  } catch (const DeviceError& e) {
    if (std::string(e.what()).find("cpu") == std::string::npos) fail(rank, std::string("unclear refusal: ") + e.what());
  }
  const int gpus = cuda_device_count();
  if (gpus >= 2) {
    Tensor other = ones({4}, TensorOptions(DType::f32).with_device(Device::cuda((rank + 1) % gpus)));
    try {
      comm.all_reduce(other);
      fail(rank, "a tensor on another GPU was accepted");
    } catch (const DeviceError&) {
    }
  }
}

// The collective is issued from a non-default current stream that is still busy: it must start only
// once that stream reached the kernel that wrote its input, and work queued after wait() must see
// its output. all_gather is out of place, so even a world of one copies on NCCL's stream.
void stream_order(Communicator& comm, int rank, int size) {
  const Device dev = Device::cuda(rank);
  cuda::Stream side = cuda::Stream::create(rank);
  cuda::StreamGuard on_side(side);
  const int64_t n = 1 << 20;
  Tensor in = zeros({n}, TensorOptions(DType::f32).with_device(dev));
  Tensor out = full({size * n}, -1.0, TensorOptions(DType::f32).with_device(dev));
  delay(dev);
  in.fill_(static_cast<double>(rank + 7));  // queued behind the delay, right before the collective
  WorkPtr w = comm.all_gather(out, in);
  w->wait();
  const Tensor seen = (out + 0.0).to(Device::cpu());  // queued right after wait(), on the side stream
  const float* v = seen.data_ptr<float>();
  int64_t wrong = 0;
  for (int64_t i = 0; i < size * n; ++i) wrong += v[i] != static_cast<float>(i / n + 7);
  if (wrong) fail(rank, "stream order: " + std::to_string(wrong) + " elements of all_gather's output missed the "
                        "kernel queued before it on the current stream, or were read before it finished");
  if (!w->is_completed()) fail(rank, "is_completed() is false after the result was read");
  w->synchronize();
}

// The caller drops its tensors and the Work while the collective waits behind a busy stream: the
// memory must stay reserved until the stream has passed the collective.
void lifetimes(Communicator& comm, int rank, int size) {
  const Device dev = Device::cuda(rank);
  const int64_t n = 1 << 20;
  const void* held_in = nullptr;
  const void* held_out = nullptr;
  {
    Tensor in = full({n}, 3.0, TensorOptions(DType::f32).with_device(dev));
    Tensor out = zeros({size * n}, TensorOptions(DType::f32).with_device(dev));
    held_in = in.raw_data();
    held_out = out.raw_data();
    delay(dev);
    comm.all_gather(out, in);  // Work dropped at once, then the tensors
  }
  Tensor again_in = Tensor::empty({n}, TensorOptions(DType::f32).with_device(dev));
  Tensor again_out = Tensor::empty({size * n}, TensorOptions(DType::f32).with_device(dev));
  if (again_in.raw_data() == held_in || again_out.raw_data() == held_out || again_in.raw_data() == held_out) {
    fail(rank, "lifetimes: the memory of a collective still in flight was handed out again");
  }
  cuda::synchronize(rank);
}

// A communicator dropped while a collective is queued behind a busy stream lets it finish.
void destroy_with_work_queued(const std::shared_ptr<Store>& store, int rank, int size) {
  const Device dev = Device::cuda(rank);
  const int64_t n = 1 << 20;
  Tensor in = full({n}, static_cast<double>(rank + 1), TensorOptions(DType::f32).with_device(dev));
  Tensor out = zeros({size * n}, TensorOptions(DType::f32).with_device(dev));
  {
    auto comm = make_nccl_communicator(store, rank, size, rank, {"gpu-test-drop"});
    delay(dev);
    comm->all_gather(out, in)->wait();
  }  // destroyed here, with the all_gather (probably) not started yet
  const Tensor back = out.to(Device::cpu());
  const float* v = back.data_ptr<float>();
  int64_t wrong = 0;
  for (int64_t i = 0; i < size * n; ++i) wrong += v[i] != static_cast<float>(i / n + 1);
  if (wrong) fail(rank, "destroying the communicator lost a queued all_gather (" + std::to_string(wrong) + " wrong)");
}

// Ranks 0 and 1 exchange a tensor (even sends first, odd receives first).
void send_recv(Communicator& comm, int rank) {
  if (rank > 1) return;
  const Device dev = Device::cuda(rank);
  Tensor mine = full({1000}, static_cast<double>(rank + 1), TensorOptions(DType::f32).with_device(dev));
  Tensor theirs = zeros({1000}, TensorOptions(DType::f32).with_device(dev));
  const int peer = 1 - rank;
  if (rank == 0) {
    comm.send(mine, peer)->wait();
    comm.recv(theirs, peer)->wait();
  } else {
    comm.recv(theirs, peer)->wait();
    comm.send(mine, peer)->wait();
  }
  if (theirs.to(Device::cpu()).data_ptr<float>()[999] != static_cast<float>(peer + 1)) fail(rank, "send/recv");
}

// Rank 1 skips all_reduce #N. Rank 0 issues it and does not wait on the host: the watchdog must
// notice the timeout by itself, abort NCCL (so the stream that waits on it moves on) and make
// every later use of the communicator throw, the Work itself with the report.
void timeout_and_abort(Communicator& comm, int rank) {
  if (rank == 0) {
    Tensor t = ones({16}, TensorOptions(DType::f32).with_device(Device::cuda(0)));
    WorkPtr w = comm.all_reduce(t, {ReduceOp::sum, std::chrono::milliseconds(1500)});
    w->wait();  // queues the current stream behind it; returns at once
    std::this_thread::sleep_for(std::chrono::milliseconds(3500));
    if (!w->is_completed()) fail(rank, "the watchdog did not end a collective 2 s past its timeout");
    try {
      w->wait();
      fail(rank, "wait() on a timed-out collective returned");
    } catch (const TimeoutError& e) {
      note(rank, e.what());
      if (std::string(e.what()).find("rank 1 never arrived") == std::string::npos) fail(rank, e.what());
    }
    try {
      comm.all_reduce(t);
      fail(rank, "an aborted communicator accepted another collective");
    } catch (const CommError& e) {
      if (std::string(e.what()).find("unusable") == std::string::npos) fail(rank, e.what());
    }
    // The current stream waited for the aborted collective's event: it must have moved on.
    cuda::current_stream(0).synchronize();
  } else {
    std::this_thread::sleep_for(std::chrono::milliseconds(6000));
  }
}

void run_rank(const std::shared_ptr<Store>& store, int rank, int size) {
  cudaSetDevice(rank);
  auto comm = make_nccl_communicator(store, rank, size, rank, {"gpu-test"});
  note(rank, comm->description() + ", world of " + std::to_string(size));
  int salt = 0;
  raw_buffers(*comm, rank, size, salt);
  tensors(*comm, rank, size, salt);
  refusals(*comm, rank);
  stream_order(*comm, rank, size);
  lifetimes(*comm, rank, size);
  if (size >= 2) send_recv(*comm, rank);
  comm->barrier()->wait();  // host-blocking
  destroy_with_work_queued(store, rank, size);
  if (size >= 2) {
    timeout_and_abort(*comm, rank);
  } else {
    note(rank, "SKIP send/recv and timeout/abort: they need 2 or more GPUs, this machine has 1");
  }
}

}  // namespace

int main() {
  const int gpus = cuda_device_count();
  if (!nccl_backend_built() || gpus == 0) {
    std::printf("SKIP: %s\n", nccl_backend_built() ? cuda_unavailable_reason().c_str() : "built without NCCL");
    return 77;
  }
  auto store = std::make_shared<HashStore>();
  std::vector<std::thread> ranks;
  for (int r = 0; r < gpus; ++r) {
    ranks.emplace_back([&, r] {
      try {
        run_rank(store, r, gpus);
      } catch (const std::exception& e) {
        fail(r, e.what());
      }
    });
  }
  for (auto& t : ranks) t.join();
  std::printf("%d GPU rank(s): %s\n", gpus, failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
