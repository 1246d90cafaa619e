#include "op_queue-impl.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../deadline-impl.h"
#include "cohort/parallel/comm/errors.h"

namespace cohort::parallel::detail {

WorkArena::~WorkArena() {
  for (void* p : free_) ::operator delete(p);
}

void* WorkArena::allocate(size_t bytes) {
  while (busy_.test_and_set(std::memory_order_acquire)) {
  }
  void* p = nullptr;
  if (bytes == block_bytes_ && !free_.empty()) {
    p = free_.back();
    free_.pop_back();
  }
  busy_.clear(std::memory_order_release);
  return p ? p : ::operator new(bytes);
}

void WorkArena::deallocate(void* p, size_t bytes) {
  while (busy_.test_and_set(std::memory_order_acquire)) {
  }
  if (block_bytes_ == 0) block_bytes_ = bytes;  // every work has the same size
  const bool keep = bytes == block_bytes_ && free_.size() < kKeep;
  if (keep) free_.push_back(p);
  busy_.clear(std::memory_order_release);
  if (!keep) ::operator delete(p);
}

bool QueuedWork::is_completed() { return queue_->is_done(*this); }

void QueuedWork::wait(Milliseconds timeout) { queue_->wait_for(*this, timeout); }

OpQueue::OpQueue(std::string name, Milliseconds tick, std::function<void()> idle)
    : name_(std::move(name)), tick_(tick), idle_(std::move(idle)) {}

OpQueue::~OpQueue() { stop(); }

// The progress thread runs at a lower priority (nice +10; Linux's nice is per thread) than the
// threads that compute. Where it shares a core with them (a rank bound to one core), it then takes
// the core while they wait rather than slicing it with them: at normal priority, Ddp's buckets
// all-reduced during backward cost the backward more than they saved (mlp, 2 ranks x 1 core: 5-8%
// slower than all-reducing after backward; with nice +10, equal or faster, docs/benchmarks.md).
// Where a core is idle, it runs there at full speed either way. Lowering one's own priority needs
// no privilege; if it fails anyway, the thread just runs at normal priority.
constexpr int kProgressNice = 10;

void OpQueue::start() {
  thread_ = std::thread([this] {
    (void)setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kProgressNice);
    loop();
  });
}

void OpQueue::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OpQueue::submit(const std::shared_ptr<QueuedWork>& work, bool wake) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    work->urgent_ = wake;
    urgent_ += wake;
    queue_.push_back(work);
  }
  if (wake) work_cv_.notify_one();
}

bool OpQueue::broken() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return !broken_.empty();
}

void OpQueue::run_head(std::unique_lock<std::mutex>& lock) {
  std::shared_ptr<QueuedWork> work = std::move(queue_.front());
  queue_.pop_front();
  urgent_ -= work->urgent_;
  work->started_ = true;
  running_ = true;
  std::string broken = broken_;
  lock.unlock();
  std::exception_ptr error;
  if (!broken.empty()) {
    error = std::make_exception_ptr(CommError(
        str_cat(name_, ": ", work->describe(), " was not run: the communicator is unusable after an earlier failure: ",
                broken),
        __FILE__, __LINE__));
  } else {
    try {
      work->executor_->execute(work);
    } catch (const std::exception& e) {
      error = std::current_exception();
      broken = e.what();
    } catch (...) {
      error = std::current_exception();
      broken = "unknown error";
    }
  }
  lock.lock();
  if (error && broken_.empty()) broken_ = broken;
  work->error_ = error;
  work->done_ = true;
  running_ = false;
  done_cv_.notify_all();
}

bool OpQueue::is_done(QueuedWork& work) {
  std::lock_guard<std::mutex> lock(mutex_);
  return work.done_;
}

// A waiter with no time limit of its own helps rather than sleeps: if nobody is running the head,
// it runs it (the head is this work or one issued before it, which must finish first anyway), and
// while it waits the progress thread leaves the queue to it, so a caller waiting for a batch wakes
// once instead of once per collective. A waiter with a limit cannot help: a collective, once
// started, runs to its own deadline. It wakes the progress thread instead and sleeps.
void OpQueue::wait_for(QueuedWork& work, Milliseconds timeout) {
  const bool help = timeout == kWaitForever;
  const auto start = help ? Clock::time_point{} : Clock::now();  // the clock costs, so only when needed
  const auto deadline = help ? Clock::time_point::max() : deadline_after(timeout, start);
  struct Waiting {  // counted for has_waiters() while this call lasts, however it ends
    std::atomic<int>& n;
    explicit Waiting(std::atomic<int>& count) : n(count) { n.fetch_add(1, std::memory_order_relaxed); }
    ~Waiting() { n.fetch_sub(1, std::memory_order_relaxed); }
  } waiting(waiting_);
  std::unique_lock<std::mutex> lock(mutex_);
  if (!help && !work.started_ && !work.urgent_) {
    work.urgent_ = true;  // the progress thread must run it (and what precedes it) now
    ++urgent_;
  }
  if (!help) work_cv_.notify_one();
  if (help) ++helpers_;
  while (!work.done_) {
    if (help && !running_ && !queue_.empty()) {
      run_head(lock);
      continue;
    }
    if (!detail::wait_until(done_cv_, lock, deadline) && !work.done_ && Clock::now() >= deadline) {
      lock.unlock();
      throw TimeoutError(work.executor_->describe_wait_timeout(work, elapsed_since(start)), __FILE__, __LINE__);
    }
  }
  // Large work left behind goes back to the progress thread, which left it to us. (Small work is
  // left for the next wait(): waking the thread, which shares the caller's core, costs more.)
  if (help && --helpers_ == 0 && urgent_ > 0 && !running_) work_cv_.notify_one();
  if (work.error_) std::rethrow_exception(work.error_);
}

void OpQueue::drain() {
  std::shared_ptr<QueuedWork> last;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queue_.empty() && !running_) return;
    if (!queue_.empty()) last = queue_.back();
  }
  if (last) {
    try {
      last->wait(kWaitForever);
    } catch (const std::exception&) {
      // reported to whoever waits on that work; draining only needs it finished
    }
  } else {
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [&] { return !running_; });
  }
}

// The progress thread. It runs the queue's head at once when some queued operation asked for it
// (a large one) or the queue is being stopped; a small head only when it was already the head at
// the previous tick and nobody is waiting for it.
void OpQueue::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  uint64_t seen = 0;  // sequence number of the small head seen at the last tick (0: none)
  for (;;) {
    if (!running_ && !queue_.empty() && helpers_ == 0) {
      const uint64_t head = queue_.front()->seq();
      if (urgent_ > 0 || stop_ || head == seen) {
        run_head(lock);
        seen = 0;
        continue;
      }
      seen = head;
    }
    if (stop_ && queue_.empty() && !running_) return;
    work_cv_.wait_for(lock, tick_);
    if (idle_ && !stop_) {
      lock.unlock();
      idle_();
      lock.lock();
    }
  }
}

}  // namespace cohort::parallel::detail
