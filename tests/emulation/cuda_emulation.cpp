// The fibers and the scheduler behind cuda_emulation.h.
//
// All state is in one Machine: the emulated GPU runs one launch at a time, and its threads are
// fibers of the one OS thread that called launch(). A fiber runs until it waits (block or warp
// barrier) or ends; it then switches straight to the next runnable fiber that the schedule picks,
// or, when none is left, back to launch(), which has either finished the block or found a deadlock.
#include "cuda_emulation.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

namespace cohort::emulation {

namespace {

constexpr int kMaxThreads = 1024;
constexpr size_t kStackBytes = 256 * 1024;  // per fiber; a guard page below each catches overflow
constexpr long kErrorsPrinted = 10;

enum class State { runnable, at_warp_sync, at_block_sync, done };

struct Fiber {
  ucontext_t context;
  char* stack = nullptr;
  Dim3 idx;
  State state = State::runnable;
  unsigned exchanges = 0;    // warp operations with an exchange buffer so far (picks the buffer)
  const char* op = nullptr;  // the warp operation it waits in
};

struct Warp {
  int waiting = 0;  // lanes at a warp operation
  float stage[2][256];
  uint64_t exchange[2][32];
};

// The runnable threads of a block, as a bit set, and the schedule's pick among them.
class RunQueue {
 public:
  void clear() {
    words_.fill(0);
    count_ = 0;
  }
  void add(int t) {
    const uint64_t bit = uint64_t(1) << (t % 64);
    if (!(words_[t / 64] & bit)) ++count_;
    words_[t / 64] |= bit;
  }
  void remove(int t) {
    const uint64_t bit = uint64_t(1) << (t % 64);
    if (words_[t / 64] & bit) --count_;
    words_[t / 64] &= ~bit;
  }
  bool empty() const { return count_ == 0; }
  int size() const { return count_; }

  int pick(Schedule schedule, std::mt19937& rng) const {
    const int n = static_cast<int>(words_.size());
    switch (schedule) {
      case Schedule::in_order:
        for (int w = 0; w < n; ++w) {
          if (words_[w]) return w * 64 + __builtin_ctzll(words_[w]);
        }
        break;
      case Schedule::reverse:
        for (int w = n - 1; w >= 0; --w) {
          if (words_[w]) return w * 64 + 63 - __builtin_clzll(words_[w]);
        }
        break;
      case Schedule::random: {
        int k = static_cast<int>(rng() % static_cast<unsigned>(count_));
        for (int w = 0; w < n; ++w) {
          const int here = __builtin_popcountll(words_[w]);
          if (k >= here) {
            k -= here;
            continue;
          }
          uint64_t bits = words_[w];
          for (; k > 0; --k) bits &= bits - 1;  // drop the k lowest set bits
          return w * 64 + __builtin_ctzll(bits);
        }
        break;
      }
    }
    return -1;
  }

 private:
  std::array<uint64_t, kMaxThreads / 64> words_{};
  int count_ = 0;
};

struct Machine {
  std::vector<Fiber> fibers;  // grows to the largest launch; stacks are kept
  std::vector<Warp> warps;
  RunQueue runnable;
  Fiber* current = nullptr;
  ucontext_t scheduler;
  const std::function<void()>* kernel = nullptr;
  Schedule schedule = Schedule::in_order;
  std::mt19937 rng;
  Dim3 block, block_dim, grid_dim;
  char* smem = nullptr;
  size_t smem_bytes = 0;
  int threads = 0;
  int at_block_sync = 0;
  int done = 0;
  long errors = 0;
  long errors_printed = 0;
  std::vector<KernelId> launched;  // by launch_recorded
  Schedule kernel_schedule = Schedule::in_order;
  uint32_t kernel_seed = 1;
};

Machine g;

int current_index() { return static_cast<int>(g.current - g.fibers.data()); }

// The current fiber has stopped being runnable (or has just released others): run the next one.
void switch_from(Fiber* from) {
  if (g.runnable.empty()) {
    swapcontext(&from->context, &g.scheduler);
    return;
  }
  Fiber* to = &g.fibers[g.runnable.pick(g.schedule, g.rng)];
  if (to == from) return;
  g.current = to;
  swapcontext(&from->context, &to->context);
}

void fiber_entry() {
  (*g.kernel)();
  Fiber* self = g.current;
  self->state = State::done;
  g.runnable.remove(current_index());
  ++g.done;
  switch_from(self);  // never resumed
  std::abort();
}

char* new_stack() {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* p = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED || mprotect(p, page, PROT_NONE) != 0) {
    std::perror("cuda emulation: fiber stack");
    std::abort();
  }
  return static_cast<char*>(p) + page;
}

// Makes thread t of a new block, runnable from the kernel's start (apart: getcontext returns twice).
__attribute__((noinline)) void reset_fiber(Fiber& f, int t) {
  f.idx = {static_cast<unsigned>(t), 0, 0};
  f.state = State::runnable;
  f.exchanges = 0;
  f.op = nullptr;
  getcontext(&f.context);
  f.context.uc_stack.ss_sp = f.stack;
  f.context.uc_stack.ss_size = kStackBytes;
  f.context.uc_link = nullptr;
  makecontext(&f.context, fiber_entry, 0);
}

// Runs the block's fibers until none can go on; false on a deadlock.
bool run_block(unsigned b) {
  std::memset(g.smem, 0xff, g.smem_bytes);  // NaN in f32, bf16 and f16: reads of unwritten data show
  g.block = {b, 0, 0};
  g.at_block_sync = 0;
  g.done = 0;
  g.runnable.clear();
  for (Warp& w : g.warps) w.waiting = 0;
  for (int t = 0; t < g.threads; ++t) {
    reset_fiber(g.fibers[t], t);
    g.runnable.add(t);
  }
  while (!g.runnable.empty()) {
    g.current = &g.fibers[g.runnable.pick(g.schedule, g.rng)];
    swapcontext(&g.scheduler, &g.current->context);
  }
  if (g.done == g.threads) return true;
  int at_warp = 0;
  for (int t = 0; t < g.threads; ++t) at_warp += g.fibers[t].state == State::at_warp_sync;
  report_error("block %u deadlocked: %d threads wait in __syncthreads, %d in warp operations, %d have ended", b,
               g.at_block_sync, at_warp, g.done);
  return false;
}

}  // namespace

const char* schedule_name(Schedule s) {
  switch (s) {
    case Schedule::in_order: return "in order";
    case Schedule::reverse: return "reverse";
    case Schedule::random: return "random";
  }
  return "?";
}

void launch(const LaunchConfig& config, const std::function<void()>& kernel) {
  if (config.threads == 0 || config.threads % 32 != 0 || config.threads > kMaxThreads) {
    report_error("launch: %u threads per block (a multiple of 32 up to %d is emulated)", config.threads, kMaxThreads);
    return;
  }
  if (config.smem_bytes > kMaxSmemBytes) {
    report_error("launch: %zu bytes of dynamic shared memory, more than a block has (%zu)", config.smem_bytes,
                 kMaxSmemBytes);
    return;
  }
  g.threads = static_cast<int>(config.threads);
  while (g.fibers.size() < config.threads) {
    g.fibers.emplace_back();
    g.fibers.back().stack = new_stack();
  }
  g.warps.resize(config.threads / 32);
  g.kernel = &kernel;
  g.schedule = config.schedule;
  g.rng.seed(config.seed);
  g.block_dim = {config.threads, 1, 1};
  g.grid_dim = {config.blocks, 1, 1};
  // Exactly the launch's size (at least one byte), 128-byte aligned like CUDA's.
  g.smem_bytes = config.smem_bytes;
  void* smem = nullptr;
  if (posix_memalign(&smem, 128, config.smem_bytes > 0 ? config.smem_bytes : 1) != 0) std::abort();
  g.smem = static_cast<char*>(smem);
  for (unsigned b = 0; b < config.blocks; ++b) {
    if (!run_block(b)) break;
  }
  std::free(smem);
  g.smem = nullptr;
  g.current = nullptr;
  g.kernel = nullptr;
}

std::vector<KernelId> take_launched_kernels() {
  std::vector<KernelId> launched;
  launched.swap(g.launched);
  return launched;
}

void set_kernel_schedule(Schedule schedule, uint32_t seed) {
  g.kernel_schedule = schedule;
  g.kernel_seed = seed;
}

void launch_recorded(KernelId id, unsigned blocks, unsigned threads, const std::function<void()>& kernel) {
  g.launched.push_back(id);
  launch({blocks, threads, 0, g.kernel_schedule, g.kernel_seed}, kernel);
}

long take_errors() {
  const long n = g.errors;
  g.errors = 0;
  return n;
}

void report_error(const char* format, ...) {
  ++g.errors;
  if (++g.errors_printed > kErrorsPrinted) {
    if (g.errors_printed == kErrorsPrinted + 1) std::fprintf(stderr, "cuda emulation: (further errors not shown)\n");
    return;
  }
  std::fprintf(stderr, "cuda emulation: ");
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  if (g.current != nullptr) std::fprintf(stderr, " [block %u, thread %d]", g.block.x, current_index());
  std::fprintf(stderr, "\n");
}

const Dim3& thread_idx() { return g.current->idx; }
const Dim3& block_idx() { return g.block; }
const Dim3& block_dim() { return g.block_dim; }
const Dim3& grid_dim() { return g.grid_dim; }
char* dynamic_smem() { return g.smem; }
int lane_id() { return current_index() % 32; }

void block_sync() {
  Fiber* self = g.current;
  self->state = State::at_block_sync;
  g.runnable.remove(current_index());
  if (++g.at_block_sync == g.threads) {
    g.at_block_sync = 0;
    for (int t = 0; t < g.threads; ++t) {
      g.fibers[t].state = State::runnable;
      g.runnable.add(t);
    }
  }
  switch_from(self);
}

void warp_sync(unsigned mask, const char* op) {
  Fiber* self = g.current;
  const int t = current_index(), w0 = t / 32 * 32;
  if (mask != 0xffffffffu) report_error("%s: mask %#x (only the full warp is emulated)", op, mask);
  self->state = State::at_warp_sync;
  self->op = op;
  g.runnable.remove(t);
  Warp& warp = g.warps[t / 32];
  if (++warp.waiting == 32) {
    warp.waiting = 0;
    for (int l = w0; l < w0 + 32; ++l) {
      Fiber& f = g.fibers[l];
      if (f.op != op && std::strcmp(f.op, op) != 0) {
        report_error("warp %d: lane %d is in %s while lane %d is in %s", t / 32, l - w0, f.op, t - w0, op);
      }
      f.state = State::runnable;
      g.runnable.add(l);
    }
  }
  switch_from(self);
}

float* warp_stage() { return g.warps[current_index() / 32].stage[g.current->exchanges++ & 1]; }
uint64_t* warp_exchange() { return g.warps[current_index() / 32].exchange[g.current->exchanges++ & 1]; }

void check_wmma_pointer(const void* p, unsigned ldm, size_t element_bytes, const char* op) {
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0) report_error("%s: pointer %p is not 32-byte aligned", op, p);
  if (ldm * element_bytes % 16 != 0) report_error("%s: ldm %u is not a multiple of 16 bytes", op, ldm);
  const char* c = static_cast<const char*>(p);
  if (g.smem != nullptr && c >= g.smem && c < g.smem + g.smem_bytes) {
    const size_t end = (size_t{15} * ldm + 16) * element_bytes;  // past the fragment's last element
    if (static_cast<size_t>(c - g.smem) + end > g.smem_bytes) {
      report_error("%s: the fragment at shared byte %td (ldm %u) ends past the block's %zu bytes", op, c - g.smem, ldm,
                   g.smem_bytes);
    }
  }
}

bool check_vector_copy(const void* dst, const void* src, size_t bytes, const char* type) {
  const bool ok = reinterpret_cast<uintptr_t>(dst) % bytes == 0 && reinterpret_cast<uintptr_t>(src) % bytes == 0;
  if (!ok) report_error("%s copy from %p to %p: not %zu-byte aligned", type, src, dst, bytes);
  return ok;
}

}  // namespace cohort::emulation

namespace cohort::detail::cuda {

int64_t grid_blocks(int64_t n, int threads_per_block) {
  return std::max<int64_t>(1, std::min<int64_t>((n + threads_per_block - 1) / threads_per_block,
                                                ::cohort::emulation::kMaxGridBlocks));
}

}  // namespace cohort::detail::cuda
