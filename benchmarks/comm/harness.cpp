#include "harness.h"

#include <algorithm>
#include <vector>

namespace cohort::bench {
namespace {

struct Placement {
  const char* send;  // the input pointer cohort gets
  char* recv;        // the output pointer cohort gets
  size_t recv_offset_bytes;
};

class Bench {
 public:
  explicit Bench(const BenchContext& ctx)
      : ctx_(ctx), o_(ctx.options), d_(ctx.desc), n_(ctx.comm.size()), rank_(ctx.comm.rank()),
        es_(element_size(o_.dtype)) {
    const Counts max = d_.counts(o_.max_bytes / es_, n_);
    send_bytes_ = std::max<size_t>(max.send * es_, 1);
    // In place, the input lives in the receive buffer too: reduce_scatter's is n times its output.
    recv_bytes_ = std::max<size_t>(std::max(max.send, max.recv) * es_, 1);
    if (ctx.device_buffers) {
      send_ = make_device_buffer(send_bytes_, ctx.device);
      recv_ = make_device_buffer(recv_bytes_, ctx.device);
      timer_ = make_device_timer(ctx.device);
    } else {
      send_ = make_host_buffer(send_bytes_);
      recv_ = make_host_buffer(recv_bytes_);
      timer_ = make_host_timer();
    }
    compare_ = o_.compare_mpi && ctx.mpi != nullptr && !ctx.device_buffers && MpiReference::supports(o_.dtype, o_.op);
  }

  Results run() {
    Results res;
    res.options = o_;
    res.nranks = n_;
    warm_up(o_.max_bytes);
    warm_up(o_.min_bytes);
    double bw_sum = 0;
    int bw_count = 0;
    for (size_t size = o_.min_bytes; size <= o_.max_bytes;
         size = o_.step_factor > 1 ? size * o_.step_factor : size + o_.step_bytes) {
      Row row = measure(size);
      for (const Timing* t : {&row.out_of_place, &row.in_place}) {
        bw_sum += t->busbw;
        ++bw_count;
        if (t->wrong > 0) ++res.errors;
      }
      if (ctx_.on_row) ctx_.on_row(row);
      res.rows.push_back(row);
      if (size == 0) break;  // a factor cannot grow 0
    }
    res.avg_busbw = bw_count ? bw_sum / bw_count : 0;
    return res;
  }

 private:
  Placement placement(const Counts& c, bool in_place) {
    if (!in_place) return {send_->data(), recv_->data(), 0};
    return {recv_->data() + c.send_in_place * es_ * rank_, recv_->data() + c.recv_in_place * es_ * rank_,
            c.recv_in_place * es_ * rank_};
  }

  void warm_up(size_t size) {
    const Counts c = d_.counts(size / es_, n_);
    std::vector<WorkPtr> works;
    for (int i = 0; i < o_.warmup; ++i) works.push_back(run_cohort(c, false));
    for (auto& w : works) w->wait();
    for (int i = 0; compare_ && i < o_.warmup; ++i) run_mpi(c, false);
  }

  WorkPtr run_cohort(const Counts& c, bool in_place) {
    Placement p = placement(c, in_place);
    return d_.run(ctx_.comm, p.send, p.recv, c.param, o_.dtype, o_.op, o_.root);
  }

  void run_mpi(const Counts& c, bool in_place) {
    Placement p = placement(c, in_place);
    d_.run_mpi(*ctx_.mpi, in_place ? nullptr : p.send, in_place ? recv_->data() : p.recv, c.param, o_.dtype, o_.op,
               o_.root);
  }

  // One timed block: all iterations issued, then all waited for (nccl-tests' default), seconds
  // per iteration averaged over the ranks. On the device the clock is a pair of CUDA events on the
  // current stream, which wait() orders behind every collective: the time the GPU took, as
  // nccl-tests measures it, not the time the host took to queue the work.
  double time_cohort(const Counts& c, bool in_place) {
    timer_->idle();
    ctx_.control.barrier();
    std::vector<WorkPtr> works;
    works.reserve(o_.iters);
    timer_->start();
    for (int i = 0; i < o_.iters; ++i) works.push_back(run_cohort(c, in_place));
    for (auto& w : works) w->wait();
    const double sec = timer_->stop() / o_.iters;
    return ctx_.control.average(sec);
  }

  double time_mpi(const Counts& c, bool in_place) {
    ctx_.control.barrier();
    timer_->start();
    for (int i = 0; i < o_.iters; ++i) run_mpi(c, in_place);
    const double sec = timer_->stop() / o_.iters;
    return ctx_.control.average(sec);
  }

  Timing derive(double sec, size_t param) const {
    Timing t;
    t.time_us = sec * 1e6;
    t.algbw = sec > 0 ? d_.algbw_bytes(param, es_, n_) / 1e9 / sec : 0;
    t.busbw = t.algbw * d_.bus_factor(n_);
    return t;
  }

  // Fills the inputs with the reference pattern, runs once, and counts wrong output elements
  // over all ranks.
  int64_t check(const Counts& c, bool in_place, int salt) {
    std::vector<char> host(c.send * es_ + 1);
    d_.fill(host.data(), c.param, o_.dtype, rank_, n_, o_.root, salt);
    Placement p = placement(c, in_place);
    Buffer& input = in_place ? *recv_ : *send_;
    input.upload(host.data(), c.send * es_, in_place ? c.send_in_place * es_ * rank_ : 0);
    run_cohort(c, in_place)->wait();
    std::vector<char> out(c.recv * es_ + 1);
    recv_->download(out.data(), c.recv * es_, p.recv_offset_bytes);
    int64_t wrong = 0;
    for (size_t i = 0; i < c.recv; ++i) {
      if (load_element(out.data(), i, o_.dtype) !=
          d_.expected(i, c.param, o_.dtype, o_.op, rank_, n_, o_.root, salt)) {
        ++wrong;
      }
    }
    return ctx_.control.sum(wrong);
  }

  static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

  Row measure(size_t size) {
    const Counts c = d_.counts(size / es_, n_);
    Row row;
    row.bytes = std::max(c.send, c.recv) * es_;
    row.count = c.param;
    row.compared = compare_;
    for (bool in_place : {false, true}) {
      std::vector<double> mine, theirs;
      for (int r = 0; r < std::max(1, o_.repeats); ++r) {  // A B A B ...: same conditions for both
        mine.push_back(time_cohort(c, in_place));
        if (compare_) theirs.push_back(time_mpi(c, in_place));
      }
      Timing t = derive(median(mine), c.param);
      for (int k = 0; k < o_.check; ++k) {
        t.wrong = check(c, in_place, ++salt_);
        if (t.wrong) break;
      }
      (in_place ? row.in_place : row.out_of_place) = t;
      if (compare_) (in_place ? row.mpi_in_place : row.mpi_out_of_place) = derive(median(theirs), c.param);
    }
    return row;
  }

  const BenchContext& ctx_;
  const BenchOptions& o_;
  const CollectiveDesc& d_;
  const int n_, rank_;
  const size_t es_;
  size_t send_bytes_ = 0, recv_bytes_ = 0;
  std::unique_ptr<Buffer> send_, recv_;
  std::unique_ptr<Timer> timer_;
  bool compare_ = false;
  int salt_ = 0;
};

}  // namespace

Results run_benchmark(const BenchContext& ctx) { return Bench(ctx).run(); }

}  // namespace cohort::bench
