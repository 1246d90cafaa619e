// OpQueue: runs a communicator's operations one at a time, in issue order, on whichever thread
// gets there first: the progress thread, or a caller blocked in wait(), which runs the head of
// the queue itself instead of sleeping until the progress thread has done it. That keeps small
// collectives as fast as a direct call (no thread hand-off) while large ones, which wake the
// progress thread when issued, overlap with the caller's compute.
//
// Items that do not wake the progress thread are still picked up by it if nobody has waited for
// them within one or two `tick`s (it wakes that often to run `idle` too: answering status queries,
// progressing point-to-point requests). Picking them up sooner would make it compete for the core
// with the caller, who is about to run them itself.
// After an operation fails, the queue is broken: later ones fail at once, naming the first error.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <atomic>

#include "cohort/core/dtype.h"
#include "cohort/parallel/comm/work.h"

namespace cohort::parallel::detail {

class OpQueue;
class QueuedWork;

// What an operation does with its arguments: the communicator that queued it.
class OpExecutor {
 public:
  virtual ~OpExecutor() = default;
  // Runs the operation; throws on failure (timeout, error).
  virtual void execute(const std::shared_ptr<QueuedWork>& work) = 0;
  // The message of a wait() that gave up before the operation's own timeout.
  virtual std::string describe_wait_timeout(const QueuedWork& work, Milliseconds waited) = 0;
};

// The arguments of one collective, kept in the work itself (no per-operation closures: the
// small-message path is a microsecond, and allocations would be a measurable part of it).
struct OpArgs {
  const void* input = nullptr;
  void* output = nullptr;
  int64_t count = 0;
  DType dtype = DType::f32;
  ReduceOp op = ReduceOp::sum;
  int root = 0;
  Milliseconds timeout{0};
};

class QueuedWork : public Work {
 public:
  QueuedWork(std::shared_ptr<OpQueue> queue, OpExecutor* executor, Collective kind, uint64_t seq, const OpArgs& args)
      : Work(kind, seq), queue_(std::move(queue)), executor_(executor), args_(args) {}
  bool is_completed() override;
  void wait(Milliseconds timeout) override;
  const OpArgs& args() const { return args_; }

 private:
  friend class OpQueue;
  std::shared_ptr<OpQueue> queue_;
  OpExecutor* executor_;
  OpArgs args_;
  bool done_ = false;  // guarded by the queue's mutex
  bool urgent_ = false;   // counted in the queue's urgent_ while queued
  bool started_ = false;
  std::exception_ptr error_;
};

// Recycles the memory of finished works. A training loop issues collectives by the thousand, and
// on the small-message path malloc and free of each work are a measurable part of a microsecond.
// Lives as long as the last work allocated from it (ArenaAllocator holds it).
class WorkArena {
 public:
  WorkArena() { free_.reserve(kKeep); }
  ~WorkArena();
  void* allocate(size_t bytes);
  void deallocate(void* p, size_t bytes);

 private:
  static constexpr size_t kKeep = 256;  // blocks kept for reuse at most
  std::atomic_flag busy_ = ATOMIC_FLAG_INIT;
  size_t block_bytes_ = 0;
  std::vector<void*> free_;
};

template <class T>
struct ArenaAllocator {
  using value_type = T;
  explicit ArenaAllocator(std::shared_ptr<WorkArena> a) : arena(std::move(a)) {}
  template <class U>
  ArenaAllocator(const ArenaAllocator<U>& other) : arena(other.arena) {}  // NOLINT: rebinding
  T* allocate(size_t n) { return static_cast<T*>(arena->allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) { arena->deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const ArenaAllocator<U>& o) const { return arena == o.arena; }
  template <class U>
  bool operator!=(const ArenaAllocator<U>& o) const { return arena != o.arena; }
  std::shared_ptr<WorkArena> arena;
};

class OpQueue {
 public:
  OpQueue(std::string name, Milliseconds tick, std::function<void()> idle);
  ~OpQueue();  // stop() if not done yet

  void start();
  // Runs what is still queued, then joins the progress thread.
  void stop();
  void submit(const std::shared_ptr<QueuedWork>& work, bool wake);
  // Waits for every operation issued so far (splitting a communicator needs a quiet one).
  void drain();
  bool broken() const;
  const std::shared_ptr<WorkArena>& arena() const { return arena_; }
  // Whether some caller is blocked in wait() now. When nobody is, the caller is computing (an
  // all-reduce overlapped with backward), and an operation waiting for its peers should leave
  // the core to it rather than spin.
  bool has_waiters() const { return waiting_.load(std::memory_order_relaxed) > 0; }

 private:
  friend class QueuedWork;
  void wait_for(QueuedWork& work, Milliseconds timeout);
  bool is_done(QueuedWork& work);
  // Claims and runs the head of the queue; the lock is released while it runs.
  void run_head(std::unique_lock<std::mutex>& lock);
  void loop();

  std::string name_;
  Milliseconds tick_;
  std::function<void()> idle_;
  mutable std::mutex mutex_;
  std::condition_variable work_cv_;  // the progress thread sleeps on it: new urgent work, stop
  std::condition_variable done_cv_;  // waiters sleep on it: an operation finished
  std::deque<std::shared_ptr<QueuedWork>> queue_;
  bool running_ = false;  // someone is running the head
  int helpers_ = 0;       // callers waiting with no limit, who run queued work themselves
  int urgent_ = 0;        // queued operations that asked for the progress thread
  bool stop_ = false;
  std::atomic<int> waiting_{0};  // callers inside wait_for
  std::string broken_;  // the first failure, once there was one
  std::thread thread_;
  std::shared_ptr<WorkArena> arena_ = std::make_shared<WorkArena>();
};

}  // namespace cohort::parallel::detail
