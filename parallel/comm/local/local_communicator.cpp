// The local backend: ranks are threads sharing a LocalState. A collective is one slot keyed by
// its sequence number. Each rank arriving copies its input in; the last one to arrive computes the
// result (once, for everybody); each rank copies its part out in its own wait(), and the last one
// to do so frees the slot. Point-to-point messages are copied into per-(src, dst, tag) mailboxes.
#include <algorithm>
#include <cstring>
#include <exception>
#include <thread>

#include "../deadline-impl.h"
#include "../reduce-impl.h"
#include "cohort/parallel/comm/local_backend.h"
#include "local_state-impl.h"

namespace cohort::parallel {
namespace detail {
namespace {

std::string aborted_message(const LocalState& st) {
  return str_cat("local group '", st.name, "' was aborted: ", st.abort_reason);
}

void abort_state(LocalState& st, const std::string& reason) {
  if (!st.aborted) {
    st.aborted = true;
    st.abort_reason = reason;
  }
  st.changed.notify_all();
}

// What a rank brings to a collective.
struct Arrival {
  Collective kind;
  uint64_t seq;
  DType dtype;
  int64_t count;
  ReduceOp op;
  int root;
  const void* input;
  size_t input_bytes;
};

std::string signature(const LocalSlot& s) {
  return str_cat(collective_name(s.kind), " of ", s.count, " ", dtype_name(s.dtype), " (op ", reduce_op_name(s.op),
                 ", root ", s.root, ")");
}

// Runs once, by the last rank to arrive, outside the lock: nobody else touches the slot's inputs
// or result until `ready` is set.
void compute_result(LocalSlot& slot, int size) {
  const size_t es = element_size(slot.dtype);
  const size_t n = static_cast<size_t>(slot.count);
  std::vector<const void*> ptrs(size);
  for (int r = 0; r < size; ++r) ptrs[r] = slot.inputs[r].data();
  switch (slot.kind) {
    case Collective::all_reduce:
      slot.result.resize(n * es);
      reduce_into(slot.result.data(), ptrs.data(), size, slot.count, slot.dtype, slot.op);
      break;
    case Collective::reduce_scatter:
      slot.result.resize(n * es * size);
      reduce_into(slot.result.data(), ptrs.data(), size, slot.count * size, slot.dtype, slot.op);
      break;
    case Collective::all_gather:
    case Collective::split:
      slot.result.resize(n * es * size);
      for (int r = 0; r < size; ++r) std::memcpy(slot.result.data() + r * n * es, ptrs[r], n * es);
      break;
    case Collective::broadcast: slot.result = std::move(slot.inputs[slot.root]); break;
    default: break;
  }
  slot.inputs.clear();
  slot.inputs.shrink_to_fit();
}

class LocalCollectiveWork : public Work {
 public:
  LocalCollectiveWork(std::shared_ptr<LocalState> st, int rank, Collective kind, uint64_t seq, void* output,
                      Milliseconds op_timeout)
      : Work(kind, seq),
        st_(std::move(st)),
        rank_(rank),
        output_(output),
        op_timeout_(op_timeout),
        op_deadline_(deadline_after(op_timeout)) {}

  bool is_completed() override {
    std::unique_lock<std::mutex> lock(st_->mutex);
    return done_ || settle(lock);
  }

  void wait(Milliseconds timeout) override {
    const auto start = Clock::now();
    const auto deadline = std::min(op_deadline_, deadline_after(timeout, start));
    std::unique_lock<std::mutex> lock(st_->mutex);
    while (!done_ && !settle(lock)) {
      if (!wait_until(st_->changed, lock, deadline) && Clock::now() >= deadline) {
        if (settle(lock)) break;
        give_up(deadline == op_deadline_, elapsed_since(start));
      }
    }
    if (error_) std::rethrow_exception(error_);
  }

  const std::vector<char>& gathered() const { return gathered_; }

 private:
  // Finishes the work when its slot is ready (copying the output out) or the world was aborted.
  // Returns whether the work is done.
  bool settle(std::unique_lock<std::mutex>&) {
    if (done_) return true;
    auto it = st_->slots.find(seq());
    if (it != st_->slots.end() && it->second.ready) {
      LocalSlot& slot = it->second;
      if (!slot.error.empty()) {
        error_ = std::make_exception_ptr(CommError(slot.error, __FILE__, __LINE__));
      } else {
        copy_out(slot);
      }
      st_->ranks[rank_].completed = seq();
      if (++slot.collected == st_->size) st_->slots.erase(it);
      done_ = true;
    } else if (st_->aborted) {
      error_ = std::make_exception_ptr(CommError(aborted_message(*st_), __FILE__, __LINE__));
      done_ = true;
    }
    return done_;
  }

  void copy_out(const LocalSlot& slot) {
    const size_t bytes = static_cast<size_t>(slot.count) * element_size(slot.dtype);
    switch (slot.kind) {
      case Collective::all_reduce:
      case Collective::broadcast: std::memcpy(output_, slot.result.data(), bytes); break;
      case Collective::all_gather: std::memcpy(output_, slot.result.data(), bytes * st_->size); break;
      case Collective::reduce_scatter: std::memcpy(output_, slot.result.data() + bytes * rank_, bytes); break;
      case Collective::split: gathered_ = slot.result; break;
      default: break;
    }
  }

  [[noreturn]] void give_up(bool op_timed_out, Milliseconds waited) {
    ReportContext ctx{"local", st_->name, rank_, st_->size};
    std::string report = timeout_report(ctx, collective(), seq(), op_timed_out ? op_timeout_ : waited, st_->ranks);
    if (op_timed_out) {
      st_->ranks[rank_].failed = seq();
      abort_state(*st_, report);
      done_ = true;
      error_ = std::make_exception_ptr(TimeoutError(report, __FILE__, __LINE__));
      std::rethrow_exception(error_);
    }
    throw TimeoutError(report + " (only this wait() gave up; the collective is still pending)", __FILE__, __LINE__);
  }

  std::shared_ptr<LocalState> st_;
  int rank_;
  void* output_;
  Milliseconds op_timeout_;
  Clock::time_point op_deadline_;
  bool done_ = false;
  std::exception_ptr error_;
  std::vector<char> gathered_;
};

class LocalDoneWork : public Work {
 public:
  LocalDoneWork(Collective kind, uint64_t seq) : Work(kind, seq) {}
  bool is_completed() override { return true; }
  void wait(Milliseconds) override {}
};

class LocalRecvWork : public Work {
 public:
  LocalRecvWork(std::shared_ptr<LocalState> st, int rank, int src, int tag, void* output, size_t bytes, uint64_t seq,
                Milliseconds op_timeout)
      : Work(Collective::recv, seq),
        st_(std::move(st)),
        rank_(rank),
        src_(src),
        tag_(tag),
        output_(output),
        bytes_(bytes),
        op_timeout_(op_timeout),
        op_deadline_(deadline_after(op_timeout)) {}

  bool is_completed() override {
    std::unique_lock<std::mutex> lock(st_->mutex);
    return settle();
  }

  void wait(Milliseconds timeout) override {
    const auto start = Clock::now();
    const auto deadline = std::min(op_deadline_, deadline_after(timeout, start));
    std::unique_lock<std::mutex> lock(st_->mutex);
    while (!settle()) {
      if (!wait_until(st_->changed, lock, deadline) && Clock::now() >= deadline && !settle()) {
        const bool op_timed_out = deadline == op_deadline_;
        const uint64_t sent = st_->sent[{src_, rank_, tag_}];
        std::string report = str_cat(
            "local group '", st_->name, "': recv #", seq(), " from rank ", src_, " (tag ", tag_, ") timed out after ",
            (op_timed_out ? op_timeout_ : elapsed_since(start)).count(), " ms on rank ", rank_, " of ", st_->size,
            ": rank ", src_, " has sent ", sent, " message(s) with tag ", tag_, " to rank ", rank_, "; ",
            describe_peer(st_->ranks[src_], st_->ranks[src_].entered + 1));
        if (!op_timed_out) throw TimeoutError(report + " (only this wait() gave up)", __FILE__, __LINE__);
        abort_state(*st_, report);
        error_ = std::make_exception_ptr(TimeoutError(report, __FILE__, __LINE__));
        done_ = true;
      }
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  bool settle() {
    if (done_) return true;
    auto& box = st_->mailboxes[{src_, rank_, tag_}];
    if (!box.empty()) {
      std::vector<char>& msg = box.front();
      if (msg.size() != bytes_) {
        error_ = std::make_exception_ptr(CommError(
            str_cat("local group '", st_->name, "': recv #", seq(), " on rank ", rank_, " expected ", bytes_,
                    " bytes from rank ", src_, " (tag ", tag_, ") but the message has ", msg.size(), " bytes"),
            __FILE__, __LINE__));
      } else {
        std::memcpy(output_, msg.data(), bytes_);
      }
      box.pop_front();
      done_ = true;
    } else if (st_->aborted) {
      error_ = std::make_exception_ptr(CommError(aborted_message(*st_), __FILE__, __LINE__));
      done_ = true;
    }
    return done_;
  }

  std::shared_ptr<LocalState> st_;
  int rank_, src_, tag_;
  void* output_;
  size_t bytes_;
  Milliseconds op_timeout_;
  Clock::time_point op_deadline_;
  bool done_ = false;
  std::exception_ptr error_;
};

class LocalCommunicator : public Communicator {
 public:
  LocalCommunicator(std::shared_ptr<LocalState> st, int rank) : Communicator(rank, st->size, st->name), st_(st) {}

  const char* backend() const override { return "local"; }
  Device device() const override { return Device::cpu(); }

 protected:
  WorkPtr do_all_reduce(const void* in, void* out, int64_t count, DType dtype, const AllReduceOptions& o,
                        uint64_t seq) override {
    return arrive({Collective::all_reduce, seq, dtype, count, o.op, 0, in, bytes(count, dtype)}, out, o.timeout);
  }
  WorkPtr do_broadcast(const void* in, void* out, int64_t count, DType dtype, const BroadcastOptions& o,
                       uint64_t seq) override {
    const size_t n = rank() == o.root ? bytes(count, dtype) : 0;  // only the root's data travels
    return arrive({Collective::broadcast, seq, dtype, count, ReduceOp::sum, o.root, in, n}, out, o.timeout);
  }
  WorkPtr do_all_gather(const void* in, void* out, int64_t count, DType dtype, const AllGatherOptions& o,
                        uint64_t seq) override {
    return arrive({Collective::all_gather, seq, dtype, count, ReduceOp::sum, 0, in, bytes(count, dtype)}, out,
                  o.timeout);
  }
  WorkPtr do_reduce_scatter(const void* in, void* out, int64_t count, DType dtype, const ReduceScatterOptions& o,
                            uint64_t seq) override {
    return arrive({Collective::reduce_scatter, seq, dtype, count, o.op, 0, in, bytes(count, dtype) * size()}, out,
                  o.timeout);
  }
  WorkPtr do_barrier(const BarrierOptions& o, uint64_t seq) override {
    return arrive({Collective::barrier, seq, DType::f32, 0, ReduceOp::sum, 0, nullptr, 0}, nullptr, o.timeout);
  }

  WorkPtr do_send(const void* in, int64_t count, DType dtype, int dst, const SendOptions& o, uint64_t seq) override {
    const char* p = static_cast<const char*>(in);
    std::vector<char> msg(p, p + bytes(count, dtype));
    std::lock_guard<std::mutex> lock(st_->mutex);
    COHORT_CHECK(!st_->aborted, CommError, aborted_message(*st_));
    st_->mailboxes[{rank(), dst, o.tag}].push_back(std::move(msg));
    ++st_->sent[{rank(), dst, o.tag}];
    st_->changed.notify_all();
    return std::make_shared<LocalDoneWork>(Collective::send, seq);
  }

  WorkPtr do_recv(void* out, int64_t count, DType dtype, int src, const RecvOptions& o, uint64_t seq) override {
    return std::make_shared<LocalRecvWork>(st_, rank(), src, o.tag, out, bytes(count, dtype), seq, o.timeout);
  }

  // Split = an all_gather of (color, key), then the members of each color agree on one new
  // LocalState: the first of them to get here creates it, the last one to pick it up forgets it.
  std::shared_ptr<Communicator> do_split(int color, int key, const std::string& name, uint64_t seq) override {
    const int64_t mine[2] = {color, key};
    auto work = arrive({Collective::split, seq, DType::i64, 2, ReduceOp::sum, 0, mine, sizeof mine}, nullptr,
                       kDefaultTimeout);
    work->wait();
    const auto& all = static_cast<LocalCollectiveWork&>(*work).gathered();
    const int64_t* pairs = reinterpret_cast<const int64_t*>(all.data());
    if (color < 0) return nullptr;
    std::vector<std::pair<int64_t, int>> members;  // (key, old rank)
    for (int r = 0; r < size(); ++r) {
      if (pairs[2 * r] == color) members.push_back({pairs[2 * r + 1], r});
    }
    std::sort(members.begin(), members.end());
    const int new_rank = static_cast<int>(
        std::find(members.begin(), members.end(), std::make_pair(int64_t{key}, rank())) - members.begin());
    std::shared_ptr<LocalState> child;
    {
      std::lock_guard<std::mutex> lock(st_->mutex);
      auto& entry = st_->children[{seq, color}];
      if (!entry) entry = std::make_shared<LocalState>(static_cast<int>(members.size()), name);
      child = entry;
      if (++st_->child_pickups[{seq, color}] == static_cast<int>(members.size())) {
        st_->children.erase({seq, color});
        st_->child_pickups.erase({seq, color});
      }
    }
    return std::make_shared<LocalCommunicator>(child, new_rank);
  }

 private:
  static size_t bytes(int64_t count, DType dtype) { return static_cast<size_t>(count) * element_size(dtype); }

  WorkPtr arrive(const Arrival& a, void* output, Milliseconds timeout) {
    const char* p = static_cast<const char*>(a.input);
    std::vector<char> copy(p, p + a.input_bytes);  // copied before taking the lock
    auto work = std::make_shared<LocalCollectiveWork>(st_, rank(), a.kind, a.seq, output, timeout);
    bool last = false;
    LocalSlot* slot = nullptr;
    {
      std::lock_guard<std::mutex> lock(st_->mutex);
      COHORT_CHECK(!st_->aborted, CommError, aborted_message(*st_));
      st_->ranks[rank()].known = true;
      st_->ranks[rank()].entered = a.seq;
      st_->ranks[rank()].entered_kind = a.kind;
      slot = &st_->slots[a.seq];
      if (slot->first_rank < 0) {
        slot->kind = a.kind;
        slot->dtype = a.dtype;
        slot->count = a.count;
        slot->op = a.op;
        slot->root = a.root;
        slot->first_rank = rank();
        slot->inputs.resize(size());
      } else if (slot->error.empty() && (slot->kind != a.kind || slot->dtype != a.dtype || slot->count != a.count ||
                                         slot->op != a.op || slot->root != a.root)) {
        LocalSlot mine;
        mine.kind = a.kind, mine.dtype = a.dtype, mine.count = a.count, mine.op = a.op, mine.root = a.root;
        slot->error = str_cat("local group '", st_->name, "': collective #", a.seq, " does not match across ranks: rank ",
                              rank(), " called ", signature(mine), " but rank ", slot->first_rank, " called ",
                              signature(*slot));
      }
      slot->inputs[rank()] = std::move(copy);
      last = ++slot->arrived == size();
      if (last && !slot->error.empty()) {
        slot->ready = true;
        st_->changed.notify_all();
        return work;
      }
    }
    if (last) {
      compute_result(*slot, size());  // std::map nodes do not move; nobody else touches it now
      std::lock_guard<std::mutex> lock(st_->mutex);
      slot->ready = true;
      st_->changed.notify_all();
    }
    return work;
  }

  std::shared_ptr<LocalState> st_;
};

}  // namespace

void abort_local_state(LocalState& st, const std::string& reason) {
  std::lock_guard<std::mutex> lock(st.mutex);
  abort_state(st, reason);
}

}  // namespace detail

LocalWorld::LocalWorld(int size, std::string name)
    : size_(size), name_(std::move(name)), state_(std::make_shared<detail::LocalState>(size, name_)) {
  COHORT_CHECK(size >= 1, ValueError, "LocalWorld: size must be >= 1, got ", size);
}

LocalWorld::~LocalWorld() = default;

std::shared_ptr<Communicator> LocalWorld::communicator(int rank) const {
  COHORT_CHECK(rank >= 0 && rank < size_, ValueError, "LocalWorld '", name_, "': rank ", rank, " is not in [0, ",
               size_, ")");
  return std::make_shared<detail::LocalCommunicator>(state_, rank);
}

ProcessGroup LocalWorld::group(int rank) const { return ProcessGroup(name_, communicator(rank)); }

// A rank that throws aborts the world, so the others fail at once instead of waiting out their
// timeouts in a collective the thrower will never join.
void LocalWorld::run(int size, const std::function<void(ProcessGroup&)>& fn, const std::string& name) {
  LocalWorld world(size, name);
  std::vector<std::exception_ptr> errors(size);
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      try {
        ProcessGroup group = world.group(r);
        fn(group);
      } catch (const std::exception& e) {
        errors[r] = std::current_exception();
        detail::abort_local_state(*world.state_, ::cohort::detail::str_cat("rank ", r, " threw: ", e.what()));
      } catch (...) {
        errors[r] = std::current_exception();
        detail::abort_local_state(*world.state_, ::cohort::detail::str_cat("rank ", r, " threw"));
      }
    });
  }
  for (auto& t : threads) t.join();
  // The first error is the cause; later ones are usually "aborted" echoes of it.
  std::exception_ptr first;
  for (auto& e : errors) {
    if (!e) continue;
    try {
      std::rethrow_exception(e);
    } catch (const CommError& c) {
      if (!first && std::string(c.what()).find("was aborted") == std::string::npos) first = e;
    } catch (...) {
      if (!first) first = e;
    }
  }
  for (auto& e : errors) {
    if (!first && e) first = e;
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace cohort::parallel
