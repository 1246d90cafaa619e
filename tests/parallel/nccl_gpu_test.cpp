// The nccl backend on real GPUs: one rank per visible GPU, as threads of this process, meeting
// through an in-process store. Every collective and dtype against the reference; with two or more
// GPUs also the timeout report and the abort. Exits 77 (ctest: skipped) when there is no GPU.
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

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

struct DeviceBuf {
  explicit DeviceBuf(size_t bytes) { cudaMalloc(&p, bytes + 16); }
  ~DeviceBuf() { cudaFree(p); }
  void* p = nullptr;
};

void run_rank(const std::shared_ptr<Store>& store, int rank, int size) {
  cudaSetDevice(rank);
  auto comm = make_nccl_communicator(store, rank, size, rank, {"gpu-test"});
  int salt = 0;
  for (DType dt : all_dtypes()) {
    const size_t es = element_size(dt);
    for (ReduceOp op : ops_for(dt)) {
      for (int64_t n : {1, 7, 4099, 1 << 20}) {
        ++salt;
        std::vector<char> host(n * es), back(n * es);
        fill_input(host.data(), n, dt, rank, salt);
        DeviceBuf d(n * es);
        cudaMemcpy(d.p, host.data(), n * es, cudaMemcpyHostToDevice);
        comm->all_reduce(d.p, d.p, n, dt, {op})->wait();
        cudaMemcpy(back.data(), d.p, n * es, cudaMemcpyDeviceToHost);
        std::string first;
        if (count_wrong(back.data(), n, dt, [&](int64_t i) { return expected_reduce(op, size, i, dt, salt); }, &first)) {
          fail(rank, std::string("all_reduce ") + dtype_name(dt) + " " + reduce_op_name(op) + ": " + first);
        }
      }
    }
    // all_gather and broadcast of 4099 elements.
    const int64_t n = 4099;
    std::vector<char> host(n * es), back(size * n * es);
    fill_input(host.data(), n, dt, rank, ++salt);
    DeviceBuf in(n * es), out(size * n * es);
    cudaMemcpy(in.p, host.data(), n * es, cudaMemcpyHostToDevice);
    comm->all_gather(in.p, out.p, n, dt)->wait();
    cudaMemcpy(back.data(), out.p, size * n * es, cudaMemcpyDeviceToHost);
    if (count_wrong(back.data(), size * n, dt, [&](int64_t i) { return input_value(int(i / n), i % n, dt, salt); })) {
      fail(rank, std::string("all_gather ") + dtype_name(dt));
    }
    comm->broadcast(in.p, out.p, n, dt, {0})->wait();
    cudaMemcpy(back.data(), out.p, n * es, cudaMemcpyDeviceToHost);
    if (count_wrong(back.data(), n, dt, [&](int64_t i) { return input_value(0, i, dt, salt); })) {
      fail(rank, std::string("broadcast ") + dtype_name(dt));
    }
  }
  comm->barrier()->wait();
  if (size >= 2) {
    // Rank 1 skips all_reduce #N: rank 0's error names it, and the communicator is aborted.
    DeviceBuf d(64);
    if (rank == 0) {
      try {
        comm->all_reduce(d.p, d.p, 1, DType::f32, {ReduceOp::sum, std::chrono::milliseconds(2000)})->wait();
        fail(rank, "all_reduce completed without rank 1");
      } catch (const TimeoutError& e) {
        std::printf("[rank 0] %s\n", e.what());
        if (std::string(e.what()).find("rank 1 never arrived") == std::string::npos) fail(rank, e.what());
      }
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(4000));
    }
  }
}

}  // namespace

int main() {
  const int gpus = cuda_device_count();
  if (gpus == 0) {
    std::printf("SKIP: %s\n", cuda_unavailable_reason().c_str());
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
