// Ddp on GPUs over the nccl communicator. On one GPU (a world of one, what a single-GPU machine
// runs): Ddp gives the same parameters as plain training on that GPU, with several buckets, with
// and without overlap, with find_unused_parameters (whose flags travel through the device
// communicator: the group has no host side), with no_sync accumulation, and with the whole run on
// a non-default current stream. With N >= 2 GPUs also N ranks (threads, one GPU each) on batch B
// against one GPU on batch N*B. Exits 77 (ctest: skipped) without a GPU or without NCCL. No test
// framework: a GPU machine may have none.
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "cohort/core/core.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "cohort/parallel/ddp.h"

using namespace cohort;
using namespace cohort::parallel;

namespace {

constexpr int64_t kIn = 6, kHidden = 40, kOut = 3;

std::mutex out_mutex;
int failures = 0;

void fail(const std::string& what) {
  std::lock_guard<std::mutex> lock(out_mutex);
  std::fprintf(stderr, "FAIL: %s\n", what.c_str());
  ++failures;
}

std::shared_ptr<Sequential> make_mlp(const Device& device) {
  Generator gen(1);
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Linear>(kIn, kHidden, true, &gen));
  m->push_back(std::make_shared<Tanh>());
  m->push_back(std::make_shared<Linear>(kHidden, kOut, true, &gen));
  m->to(device);
  return m;
}

// x (n, kIn), y (n,) class labels, made on the CPU (the same on every rank) and moved.
Batch data(int64_t n, const Device& device) {
  Generator gen(99);
  Batch b;
  b.data = randn({n, kIn}, {}, &gen).to(device);
  b.target = randint(0, kOut, {n}, DType::i64, &gen).to(device);
  return b;
}

Batch rows(const Batch& b, int64_t lo, int64_t hi) { return {b.data.slice(0, lo, hi), b.target.slice(0, lo, hi)}; }

using Params = std::map<std::string, Tensor>;  // on the CPU

Params snapshot(const Module& m) {
  Params p;
  for (const auto& [name, t] : m.named_parameters()) p[name] = t.to(Device::cpu()).clone();
  return p;
}

void expect_close(const std::string& what, const Params& a, const Params& b, double tol) {
  if (a.size() != b.size()) return fail(what + ": different parameter sets");
  for (const auto& [name, t] : a) {
    const double diff = max(abs(t - b.at(name))).item();
    if (!(diff <= tol)) fail(what + ": parameter " + name + " differs by " + std::to_string(diff));
  }
}

SGDOptions sgd_options() {
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  return o;
}

constexpr int kSteps = 4;
constexpr int64_t kBatch = 8;

// Plain training on `device`: batch `world * kBatch` per step, kSteps steps.
Params train_plain(const Device& device, int world) {
  auto m = make_mlp(device);
  SGD opt(m->named_parameters(), sgd_options());
  const int64_t step_rows = world * kBatch;
  const Batch all = data(step_rows * kSteps, device);
  for (int s = 0; s < kSteps; ++s) {
    opt.zero_grad();
    const Batch b = rows(all, s * step_rows, (s + 1) * step_rows);
    cross_entropy(m->forward(b.data), b.target).backward();
    opt.step();
  }
  return snapshot(*m);
}

struct Variant {
  std::string name;
  DdpOptions options;
  bool side_stream = false;  // everything on a non-default current stream
  int micro = 1;             // no_sync accumulation over this many micro-batches
};

// Rank `rank` of `world` (one GPU each) trains kSteps steps on its block of each step's rows.
Params train_ddp(const ProcessGroup& group, int rank, int world, const Variant& v) {
  const Device dev = Device::cuda(rank);
  std::optional<cuda::StreamGuard> on_side;
  if (v.side_stream) on_side.emplace(cuda::Stream::create(rank));
  auto m = make_mlp(dev);
  auto ddp = std::make_shared<Ddp>(m, group, v.options);
  SGD opt(ddp->named_parameters(), sgd_options());
  const int64_t step_rows = world * kBatch;
  const Batch all = data(step_rows * kSteps, dev);
  for (int s = 0; s < kSteps; ++s) {
    opt.zero_grad();
    const Batch mine = rows(all, s * step_rows + rank * kBatch, s * step_rows + (rank + 1) * kBatch);
    const int64_t per = kBatch / v.micro;
    for (int k = 0; k < v.micro; ++k) {
      const Batch b = rows(mine, k * per, (k + 1) * per);
      auto step = [&] { (cross_entropy(ddp->forward(b.data), b.target) * (1.0 / v.micro)).backward(); };
      if (k < v.micro - 1) {
        auto guard = ddp->no_sync();
        step();
      } else {
        step();
      }
    }
    opt.step();
  }
  if (ddp->stats().steps != kSteps) fail(v.name + ": Ddp counted " + std::to_string(ddp->stats().steps) + " steps");
  if (ddp->stats().buckets < 2) fail(v.name + ": expected several buckets");
  return snapshot(*m);
}

std::vector<Variant> variants() {
  std::vector<Variant> out;
  DdpOptions small;
  small.first_bucket_bytes = 64;  // several buckets, so several all-reduces per step
  small.bucket_bytes = 512;
  out.push_back({"overlap", small});
  DdpOptions no_overlap = small;
  no_overlap.overlap = false;
  out.push_back({"no overlap", no_overlap});
  DdpOptions unused = small;
  unused.find_unused_parameters = true;
  out.push_back({"find_unused_parameters", unused});
  out.push_back({"side stream", small, true});
  out.push_back({"no_sync x2", small, false, 2});
  return out;
}

void run_world(int world) {
  const Params expected = train_plain(Device::cuda(0), world);
  std::printf("world of %d: plain training on one GPU done\n", world);
  for (const Variant& v : variants()) {
    auto store = std::make_shared<HashStore>();
    std::vector<Params> got(world);
    std::vector<std::thread> ranks;
    for (int r = 0; r < world; ++r) {
      ranks.emplace_back([&, r] {
        try {
          NcclOptions no;
          no.name = "ddp-" + std::to_string(world);
          ProcessGroup group("world", nullptr, make_nccl_communicator(store, r, world, r, no));
          got[r] = train_ddp(group, r, world, v);
        } catch (const std::exception& e) {
          fail("world " + std::to_string(world) + ", " + v.name + ", rank " + std::to_string(r) + ": " + e.what());
        }
      });
    }
    for (auto& t : ranks) t.join();
    // One rank: the same numbers exactly up to float noise (avg over one rank is the identity).
    // Several: only the order of additions differs.
    for (int r = 0; r < world; ++r) {
      if (!got[r].empty()) expect_close("world " + std::to_string(world) + ", " + v.name, got[r], expected,
                                        world == 1 ? 1e-6 : 2e-5);
    }
    std::printf("world of %d, %s: %s\n", world, v.name.c_str(), failures ? "FAILED so far" : "ok");
  }
}

// A model on the CPU or on another GPU than the group's is refused with a message saying what to do.
void refusals() {
  auto comm = make_nccl_communicator(std::make_shared<HashStore>(), 0, 1, 0, {"ddp-refusals"});
  ProcessGroup group("world", nullptr, comm);
  Generator gen(1);
  auto cpu_model = std::make_shared<Linear>(3, 2, true, &gen);
  try {
    Ddp ddp(cpu_model, group);
    fail("Ddp accepted a CPU model on an nccl-only group");
  } catch (const DeviceError& e) {
    if (std::string(e.what()).find("move the model") == std::string::npos) fail(std::string("unclear: ") + e.what());
  }
}

}  // namespace

int main() {
  if (!nccl_backend_built() || !cuda::is_available()) {
    std::printf("SKIP: %s\n", nccl_backend_built() ? cuda::unavailable_reason().c_str() : "built without NCCL");
    return 77;
  }
  try {
    refusals();
    run_world(1);
    if (cuda::device_count() >= 2) {
      run_world(cuda::device_count());
    } else {
      std::printf("SKIP world of N >= 2 ranks against one GPU: needs 2 or more GPUs, this machine has 1\n");
    }
  } catch (const std::exception& e) {
    fail(e.what());
  }
  std::printf("ddp on GPUs: %s\n", failures ? "FAILED" : "passed");
  return failures ? 1 : 0;
}
