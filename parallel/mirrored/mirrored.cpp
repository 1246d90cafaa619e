// Mirrored: see cohort/parallel/mirrored.h.
#include "cohort/parallel/mirrored.h"

#include <sched.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "cohort/core/autograd.h"
#include "cohort/core/error.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/indexing.h"
#include "cohort/core/parallel_for.h"

namespace cohort::parallel {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

// Threads for replicas 1..N-1 (replica 0 runs on the caller's thread). run() hands every thread
// the same task and returns when all have finished it, rethrowing the first failure.
struct Mirrored::Pool {
  explicit Pool(int replicas, int threads_per_replica) : errors(replicas) {
    for (int k = 1; k < replicas; ++k) {
      workers.emplace_back([this, k, threads_per_replica] {
        set_num_threads(threads_per_replica);  // per thread: OpenMP's setting is thread-local
        uint64_t seen = 0;
        for (;;) {
          std::function<void(int)> fn;
          {
            std::unique_lock<std::mutex> lock(mutex);
            start.wait(lock, [&] { return stop || generation != seen; });
            if (stop) return;
            seen = generation;
            fn = task;
          }
          try {
            fn(k);
          } catch (...) {
            errors[k] = std::current_exception();
          }
          std::lock_guard<std::mutex> lock(mutex);
          if (++finished == static_cast<int>(workers.size())) done.notify_one();
        }
      });
    }
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    start.notify_all();
    for (auto& t : workers) t.join();
  }

  void run(const std::function<void(int)>& fn) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      task = fn;
      finished = 0;
      ++generation;
      for (auto& e : errors) e = nullptr;
    }
    start.notify_all();
    try {
      fn(0);
    } catch (...) {
      errors[0] = std::current_exception();
    }
    {
      std::unique_lock<std::mutex> lock(mutex);
      done.wait(lock, [&] { return finished == static_cast<int>(workers.size()); });
    }
    for (auto& e : errors)
      if (e) std::rethrow_exception(e);
  }

  std::vector<std::thread> workers;
  std::vector<std::exception_ptr> errors;
  std::mutex mutex;
  std::condition_variable start, done;
  std::function<void(int)> task;
  uint64_t generation = 0;
  int finished = 0;
  bool stop = false;
};

Mirrored::Mirrored(const ModelFactory& make_model, MirroredOptions options, ProcessGroup group)
    : options_(options), group_(std::move(group)) {
  const int n = options_.replicas > 0 ? options_.replicas : usable_cores();
  COHORT_CHECK(options_.replicas >= 0, ValueError, "Mirrored: replicas must be >= 0 (0: one per core), got ",
               options_.replicas);
  COHORT_CHECK(options_.threads_per_replica >= 1, ValueError, "Mirrored: threads_per_replica must be >= 1, got ",
               options_.threads_per_replica);
  for (int k = 0; k < n; ++k) {
    replicas_.push_back(make_model());
    COHORT_CHECK(replicas_.back() != nullptr, ValueError, "Mirrored: the model factory returned null");
  }
  for (auto& r : replicas_) {
    // Replicas are CPU threads here; GPUs get one rank each (Ddp over an nccl group).
    for (const auto& [name, p] : r->named_parameters()) {
      COHORT_CHECK(p.device().is_cpu(), DeviceError, "Mirrored: parameter '", name, "' of a replica is on ",
                   p.device().str(), ", but Mirrored runs its replicas as CPU threads. For GPUs run one rank per GPU "
                   "(cohort-run, or threads with one nccl communicator each) and wrap the model in Ddp");
    }
    params_.emplace_back();
    buffers_.emplace_back();
    for (auto& [name, p] : r->named_parameters()) params_.back().push_back(p);
    for (auto& [name, b] : r->named_buffers()) buffers_.back().push_back(b);
    COHORT_CHECK(params_.back().size() == params_[0].size() && buffers_.back().size() == buffers_[0].size(),
                 ValueError, "Mirrored: the model factory built replicas with different parameters (replica ",
                 params_.size() - 1, " has ", params_.back().size(), ", replica 0 has ", params_[0].size(),
                 "); it must build the same model every time");
    for (size_t i = 0; i < params_.back().size(); ++i) {
      COHORT_CHECK(params_.back()[i].shape() == params_[0][i].shape(), ValueError,
                   "Mirrored: the model factory built replicas with different parameter shapes (parameter #", i,
                   ": ", params_.back()[i].shape_str(), " against ", params_[0][i].shape_str(), ")");
    }
  }
  if (group_.is_member() && group_.size() > 1) {
    NoGradGuard no_grad;
    BroadcastOptions bo;
    bo.root = 0;
    bo.timeout = options_.timeout;
    std::vector<WorkPtr> works;
    for (Tensor& p : params_[0]) works.push_back(group_.broadcast(p, bo));
    for (Tensor& b : buffers_[0]) works.push_back(group_.broadcast(b, bo));
    for (auto& w : works) w->wait();
  }
  pool_ = std::make_unique<Pool>(n, options_.threads_per_replica);
}

Mirrored::~Mirrored() = default;

void Mirrored::run_all(const std::function<void(int)>& task) {
  // Replica 0 runs on the caller's thread with the same thread count as the others.
  const int prev = get_num_threads();
  set_num_threads(options_.threads_per_replica);
  try {
    pool_->run(task);
  } catch (...) {
    set_num_threads(prev);
    throw;
  }
  set_num_threads(prev);
}

StepOutput Mirrored::forward_backward(const Batch& batch, const LossFn& loss) {
  const int n = replicas();
  const int64_t rows = batch.data.size(0);
  COHORT_CHECK(batch.target.defined() && batch.target.size(0) == rows, ShapeError,
               "Mirrored: the batch's data has ", rows, " rows but its target has ",
               batch.target.defined() ? std::to_string(batch.target.size(0)) : std::string("none"),
               "; both are split over the replicas along dim 0");
  COHORT_CHECK(rows >= n, ShapeError, "Mirrored: a batch of ", rows, " rows cannot feed ", n,
               " replicas; use a batch of at least ", n, " rows or fewer replicas");
  std::vector<double> losses(n, 0.0);
  std::vector<Tensor> outputs(n);
  run_all([&](int k) {
    // Same weights as replica 0 (which the optimizer has just updated).
    if (k > 0) {
      NoGradGuard no_grad;
      for (size_t i = 0; i < params_[k].size(); ++i) params_[k][i].copy_(params_[0][i]);
      for (size_t i = 0; i < buffers_[k].size(); ++i) buffers_[k][i].copy_(buffers_[0][i]);
      for (Tensor& p : params_[k]) p.set_grad(Tensor());
    }
    const int64_t lo = rows * k / n, hi = rows * (k + 1) / n;
    const double share = static_cast<double>(hi - lo) / static_cast<double>(rows);
    const Tensor out = replicas_[k]->forward(batch.data.slice(0, lo, hi));
    const Tensor l = loss(out, batch.target.slice(0, lo, hi));
    (l * share).backward();
    losses[k] = l.item() * share;
    outputs[k] = out.detach();
  });
  if (n > 1) run_all([&](int k) { sum_into_primary(k); });
  if (group_.is_member() && group_.size() > 1) all_reduce_across_processes();
  StepOutput result;
  for (double l : losses) result.loss += l;
  if (group_.is_member() && group_.size() > 1) {
    Tensor t = from_vector(std::vector<double>{result.loss});
    AllReduceOptions ao;
    ao.op = ReduceOp::avg;
    ao.timeout = options_.timeout;
    group_.all_reduce(t, ao)->wait();
    result.loss = t.item<double>();
  }
  result.output = n == 1 ? outputs[0] : cat(outputs, 0);
  return result;
}

// Thread k sums parameters k, k + n, ... of every replica into replica 0's gradient.
void Mirrored::sum_into_primary(int k) {
  NoGradGuard no_grad;
  const int n = replicas();
  for (size_t i = static_cast<size_t>(k); i < params_[0].size(); i += static_cast<size_t>(n)) {
    Tensor& primary = params_[0][i];
    Tensor total = primary.grad();
    for (int r = 1; r < n; ++r) {
      const Tensor g = params_[r][i].grad();
      if (!g.defined()) continue;
      if (!total.defined()) {
        total = g.clone();
      } else {
        add_(total, g);
      }
    }
    if (total.defined() && !primary.grad().defined()) primary.set_grad(total);
  }
}

void Mirrored::all_reduce_across_processes() {
  NoGradGuard no_grad;
  AllReduceOptions ao;
  ao.op = ReduceOp::avg;
  ao.timeout = options_.timeout;
  std::vector<WorkPtr> works;
  for (Tensor& p : params_[0]) {
    if (!p.requires_grad()) continue;
    Tensor g = p.grad();
    if (!g.defined()) {  // every process must reduce every parameter: an unused one counts as zero
      g = zeros_like(p);
      p.set_grad(g);
    }
    works.push_back(group_.all_reduce(g, ao));
  }
  for (auto& w : works) w->wait();
}

std::function<StepOutput(const Batch&)> Mirrored::step_fn(LossFn loss) {
  return [this, loss = std::move(loss)](const Batch& b) { return forward_backward(b, loss); };
}

}  // namespace cohort::parallel
