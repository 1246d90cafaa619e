// Ddp: see cohort/parallel/ddp.h. The per-step life of a bucket:
//   pending = its parameter count    (reset when the first hook of a backward pass fires)
//   hook: copy the gradient in, --pending; at 0 the bucket is ready
//   ready buckets are launched strictly in bucket order (every rank issues the same collectives
//   in the same order, whatever order its gradients arrive in)
//   end of backward (an autograd end callback): launch the rest, wait, point .grad at the slices.
// On a GPU the buckets live on the parameters' device: the hooks' copies are queued on the current
// stream, each all-reduce runs on the nccl communicator's stream once that stream has reached the
// bucket's last copy, and "wait" makes the current stream wait for the all-reduces' end events. So
// the host never waits for a bucket; the optimizer's kernels, queued after backward returns, run
// after the reduced gradients are in.
#include "cohort/parallel/ddp.h"

#include <algorithm>
#include <chrono>
#include <sstream>

#include "cohort/core/autograd.h"
#include "cohort/core/error.h"
#include "cohort/core/ops/factory.h"

namespace cohort::parallel {

struct Ddp::Param {
  std::string name;  // as the model names it (without "module.")
  Tensor tensor;
  size_t bucket = 0;
  int64_t offset = 0;  // in elements, within the bucket
  int hook = -1;
  bool ready = false;  // its gradient arrived in this backward pass
};

struct Ddp::Bucket {
  Tensor flat;                  // the gradients, end to end
  std::vector<size_t> params;   // indices into State::params, in layout order
  int pending = 0;
  bool launched = false;
  WorkPtr work;
};

struct Ddp::State {
  std::vector<Param> params;
  std::vector<Bucket> buckets;
  size_t next_launch = 0;  // the lowest bucket not launched yet
  bool active = false;     // inside a synchronised backward pass: hooks have fired
};

namespace {

using Clock = std::chrono::steady_clock;

// One line per parameter and buffer: what every rank's model must agree on.
std::vector<std::string> signature(const Module& m) {
  std::vector<std::string> lines;
  for (const auto& [name, p] : m.named_parameters())
    lines.push_back("parameter " + name + " " + dtype_name(p.dtype()) + " " + p.shape_str());
  for (const auto& [name, b] : m.named_buffers())
    lines.push_back("buffer " + name + " " + dtype_name(b.dtype()) + " " + b.shape_str());
  return lines;
}

// Where the model lives: every parameter and buffer on one device (one GPU per rank, or the CPU).
Device model_device(const Module& m) {
  std::string first;
  Device dev = Device::cpu();
  auto visit = [&](const std::string& name, const Tensor& t) {
    if (first.empty()) {
      first = name;
      dev = t.device();
      return;
    }
    COHORT_CHECK(t.device() == dev, DeviceError, "Ddp: the model spans devices: '", first, "' is on ", dev.str(),
                 " but '", name, "' is on ", t.device().str(), "; Ddp drives one device per rank: move the whole ",
                 "model with model->to(device) before wrapping it");
  };
  for (const auto& [name, p] : m.named_parameters()) visit(name, p);
  for (const auto& [name, b] : m.named_buffers()) visit(name, b);
  return dev;
}

std::string join(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// The small collectives Ddp runs for itself (the model check, the unused-parameter flags) carry
// host vectors. They go through the group's host communicator when it has one; a group built for
// NCCL without MPI has none, so they travel as tensors on its GPU and come back (to(Device::cpu())
// is queued on the stream wait() ordered after the collective, then waits for it).
Tensor to_control(const ProcessGroup& g, const Tensor& host) {
  return g.has_host() ? host : host.to(g.device().device());
}

Tensor to_host(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

// The first place two signatures part, in words.
std::string first_difference(const std::vector<std::string>& root, const std::vector<std::string>& mine) {
  const size_t n = std::min(root.size(), mine.size());
  for (size_t i = 0; i < n; ++i) {
    if (root[i] != mine[i]) {
      return "entry #" + std::to_string(i) + ": rank 0 has '" + root[i] + "', this rank has '" + mine[i] + "'";
    }
  }
  if (root.size() > mine.size())
    return "rank 0 has " + std::to_string(root.size() - n) + " more entries, the first '" + root[n] + "'";
  return "this rank has " + std::to_string(mine.size() - n) + " more entries, the first '" + mine[n] + "'";
}

}  // namespace

Ddp::Ddp(std::shared_ptr<Module> module, ProcessGroup group, DdpOptions options)
    : Module("Ddp"), module_(std::move(module)), group_(std::move(group)), options_(options),
      state_(std::make_unique<State>()) {
  COHORT_CHECK(module_ != nullptr, ValueError, "Ddp: the module is null");
  COHORT_CHECK(group_.is_member(), ValueError, "Ddp: this rank is not a member of the process group '",
               group_.name(), "'");
  COHORT_CHECK(options_.bucket_bytes > 0 && options_.first_bucket_bytes > 0, ValueError,
               "Ddp: bucket sizes must be > 0 (got bucket_bytes ", options_.bucket_bytes, ", first_bucket_bytes ",
               options_.first_bucket_bytes, ")");
  register_module("module", module_);
  device_ = model_device(*module_);
  if (device_.is_cuda()) {
    COHORT_CHECK(group_.has_device(), DeviceError, "Ddp: the model is on ", device_.str(), " but process group '",
                 group_.name(), "' moves host memory only (its communicator is ", group_.host().backend(),
                 "); build the group for GPUs with make_process_group({.backend = \"nccl\", ...}), one rank per GPU");
    COHORT_CHECK(group_.device().device() == device_, DeviceError, "Ddp: the model is on ", device_.str(),
                 " but this rank's nccl communicator drives ", group_.device().device().str(),
                 "; move the model to the rank's GPU (model->to(", group_.device().device().str(),
                 ")) before wrapping it");
  } else {
    COHORT_CHECK(group_.has_host(), DeviceError, "Ddp: the model is on the CPU but process group '", group_.name(),
                 "' has only a device communicator (", group_.device().backend(), " on ",
                 group_.device().device().str(), "); move the model there with model->to(",
                 group_.device().device().str(), ") or build the group with backend mpi");
  }
  check_same_model();
  broadcast_state();
  build_buckets();
}

Ddp::~Ddp() {
  for (Param& p : state_->params) {
    if (p.hook >= 0) p.tensor.remove_hook(p.hook);
  }
  // Buckets still in flight (a failed step) keep their tensors alive through their Work.
}

void Ddp::check_same_model() {
  const std::vector<std::string> mine = signature(*module_);
  if (group_.size() == 1) return;
  NoGradGuard no_grad;
  const std::string text = join(mine);
  Tensor len = to_control(group_, from_vector(std::vector<int64_t>{static_cast<int64_t>(text.size())}));
  group_.all_reduce(len, {ReduceOp::max, options_.timeout})->wait();
  const int64_t n = to_host(len).item<int64_t>();
  std::vector<int32_t> chars(static_cast<size_t>(n), -1);
  for (size_t i = 0; i < text.size(); ++i) chars[i] = static_cast<unsigned char>(text[i]);
  Tensor root_text = to_control(group_, from_vector(chars));
  BroadcastOptions bo;
  bo.root = 0;
  bo.timeout = options_.timeout;
  group_.broadcast(root_text, bo)->wait();
  root_text = to_host(root_text);
  std::string root_string;
  const int32_t* c = root_text.data_ptr<int32_t>();
  for (int64_t i = 0; i < n && c[i] >= 0; ++i) root_string.push_back(static_cast<char>(c[i]));
  const bool differs = root_string != text;
  Tensor mine_flag = to_control(group_, from_vector(std::vector<int32_t>{differs ? 1 : 0}));
  Tensor flags = zeros({group_.size()}, TensorOptions(DType::i32).with_device(mine_flag.device()));
  group_.all_gather(flags, mine_flag, {options_.timeout})->wait();
  flags = to_host(flags);
  std::string ranks;
  const int32_t* f = flags.data_ptr<int32_t>();
  for (int r = 0; r < group_.size(); ++r)
    if (f[r] != 0) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  if (differs) {
    COHORT_THROW(ValueError, "Ddp: the model on rank ", group_.rank(), " differs from rank 0's: ",
                 first_difference(split_lines(root_string), mine),
                 ". Every rank must build the same model: the same parameters and buffers with the same names, "
                 "shapes and dtypes, registered in the same order (ranks that differ: ", ranks, ")");
  }
  COHORT_CHECK(ranks.empty(), ValueError, "Ddp: the models on ranks ", ranks,
               " differ from rank 0's (their own errors show the first difference); every rank must build the "
               "same model");
}

void Ddp::broadcast_state() {
  if (group_.size() == 1) return;
  NoGradGuard no_grad;
  BroadcastOptions bo;
  bo.root = 0;
  bo.timeout = options_.timeout;
  std::vector<WorkPtr> works;
  for (auto [name, t] : module_->named_parameters()) works.push_back(group_.broadcast(t, bo));
  for (auto [name, t] : module_->named_buffers()) works.push_back(group_.broadcast(t, bo));
  for (auto& w : works) w->wait();
}

void Ddp::build_buckets() {
  State& st = *state_;
  const auto named = module_->named_parameters();
  for (const auto& [name, t] : named) {
    if (!t.requires_grad()) continue;
    COHORT_CHECK(t.is_contiguous(), ValueError, "Ddp: parameter '", name, "' is not contiguous");
    Param p;
    p.name = name;
    p.tensor = t;
    st.params.push_back(std::move(p));
  }
  // Reverse registration order: roughly the order backward makes the gradients final.
  std::vector<size_t> order(st.params.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
  size_t cap = options_.first_bucket_bytes, bytes = 0;
  DType dtype = DType::f32;
  std::vector<std::vector<size_t>> groups;
  for (size_t i : order) {
    const Tensor& t = st.params[i].tensor;
    const bool fits = !groups.empty() && t.dtype() == dtype && bytes < cap;
    if (!fits) {
      if (!groups.empty()) cap = options_.bucket_bytes;
      groups.emplace_back();
      bytes = 0;
      dtype = t.dtype();
    }
    groups.back().push_back(i);
    bytes += t.nbytes();
  }
  for (auto& g : groups) {
    Bucket b;
    int64_t n = 0;
    for (size_t i : g) {
      st.params[i].bucket = st.buckets.size();
      st.params[i].offset = n;
      n += st.params[i].tensor.numel();
    }
    b.flat = zeros({n}, TensorOptions(st.params[g.front()].tensor.dtype()).with_device(device_));  // (n,)
    b.params = g;
    st.buckets.push_back(std::move(b));
  }
  stats_.buckets = static_cast<int64_t>(st.buckets.size());
  for (size_t i = 0; i < st.params.size(); ++i) {
    st.params[i].hook = st.params[i].tensor.register_hook([this, i](Tensor& leaf) { on_gradient(i, leaf); });
  }
  reset_step();
}

std::vector<std::vector<std::string>> Ddp::bucket_layout() const {
  std::vector<std::vector<std::string>> out;
  for (const Bucket& b : state_->buckets) {
    out.emplace_back();
    for (size_t i : b.params) out.back().push_back(state_->params[i].name);
  }
  return out;
}

void Ddp::reset_step() {
  State& st = *state_;
  for (Param& p : st.params) p.ready = false;
  for (Bucket& b : st.buckets) {
    b.pending = static_cast<int>(b.params.size());
    b.launched = false;
    b.work.reset();
  }
  st.next_launch = 0;
  st.active = false;
}

Tensor Ddp::forward(const Tensor& x) {
  if (GradMode::is_enabled() && sync_) {
    COHORT_CHECK(!expect_backward_, AutogradError,
                 "Ddp: the previous forward's backward pass reduced no gradients (no parameter got one, or "
                 "backward was not called). Call backward on a loss that depends on the output before the next "
                 "forward; for a forward that trains nothing, run it under NoGradGuard");
    expect_backward_ = true;
  }
  if (options_.broadcast_buffers && group_.size() > 1) {
    NoGradGuard no_grad;
    BroadcastOptions bo;
    bo.root = 0;
    bo.timeout = options_.timeout;
    for (auto [name, t] : module_->named_buffers()) group_.broadcast(t, bo)->wait();
  }
  return module_->forward(x);
}

void Ddp::on_gradient(size_t index, Tensor& leaf) {
  if (!sync_) return;
  State& st = *state_;
  if (!st.active) {
    st.active = true;
    queue_backward_callback([this] { finish_backward(); });
  }
  Param& p = st.params[index];
  if (p.ready) return;
  p.ready = true;
  Bucket& b = st.buckets[p.bucket];
  NoGradGuard no_grad;
  const Tensor g = leaf.grad();
  COHORT_CHECK(g.device() == b.flat.device(), DeviceError, "Ddp: the gradient of 'module.", p.name, "' is on ",
               g.device().str(), " but Ddp's buckets were built on ", b.flat.device().str(),
               "; move the model before wrapping it in Ddp, not after");
  Tensor slot = b.flat.slice(0, p.offset, p.offset + p.tensor.numel()).reshape(p.tensor.shape());
  if (g.raw_data() != slot.raw_data()) slot.copy_(g);
  if (--b.pending == 0 && options_.overlap) launch_ready();
}

void Ddp::launch_ready() {
  State& st = *state_;
  while (st.next_launch < st.buckets.size() && st.buckets[st.next_launch].pending == 0) {
    Bucket& b = st.buckets[st.next_launch++];
    AllReduceOptions ao;
    ao.op = ReduceOp::avg;
    ao.timeout = options_.timeout;
    b.work = group_.all_reduce(b.flat, ao);
    b.launched = true;
  }
}

void Ddp::finish_backward() {
  State& st = *state_;
  NoGradGuard no_grad;
  expect_backward_ = false;
  std::vector<std::string> missing;
  std::vector<int32_t> used_here;  // find_unused_parameters: 1 for each parameter this rank used
  if (options_.find_unused_parameters) used_here.assign(st.params.size(), 0);
  for (size_t i = 0; i < st.params.size(); ++i) {
    Param& p = st.params[i];
    if (p.ready) {
      if (!used_here.empty()) used_here[i] = 1;
      continue;
    }
    if (!options_.find_unused_parameters) {
      missing.push_back("module." + p.name);
      continue;
    }
    Bucket& b = st.buckets[p.bucket];
    b.flat.slice(0, p.offset, p.offset + p.tensor.numel()).zero_();
    p.ready = true;
    --b.pending;
  }
  if (!missing.empty()) {
    std::string names;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) names += (i ? ", " : "") + missing[i];
    if (missing.size() > 8) names += ", ... (" + std::to_string(missing.size() - 8) + " more)";
    reset_step();
    COHORT_THROW(AutogradError, "Ddp: ", missing.size(), " parameter", missing.size() == 1 ? "" : "s",
                 " got no gradient in this backward pass: ", names,
                 ". Every rank must reduce every gradient bucket, so the step cannot be synchronised. If the model "
                 "skips these parameters on purpose in some steps, construct Ddp with "
                 "DdpOptions::find_unused_parameters = true; otherwise make sure forward() uses them and the loss "
                 "depends on them");
  }
  const auto t0 = Clock::now();
  launch_ready();  // everything is ready now; with overlap off this launches every bucket
  Tensor used;  // (params,) i32: how many ranks used each parameter
  WorkPtr used_work;
  if (!used_here.empty()) {
    AllReduceOptions ao;
    ao.op = ReduceOp::sum;
    ao.timeout = options_.timeout;
    used = to_control(group_, from_vector(used_here));
    used_work = group_.all_reduce(used, ao);
  }
  try {
    // On a GPU these return at once: the current stream waits for each all-reduce's end event.
    for (Bucket& b : st.buckets) b.work->wait();
    if (used_work) {
      used_work->wait();
      used = to_host(used);  // the host needs the flags now (a device copy waits for the stream)
    }
  } catch (...) {
    reset_step();  // the next backward starts clean (a timed-out communicator refuses it anyway)
    throw;
  }
  stats_.wait_seconds += std::chrono::duration<double>(Clock::now() - t0).count();
  ++stats_.steps;
  const int32_t* used_by = used.defined() ? used.data_ptr<int32_t>() : nullptr;
  for (size_t i = 0; i < st.params.size(); ++i) {
    Param& p = st.params[i];
    if (used_by != nullptr && used_by[i] == 0) continue;  // no rank used it
    const Bucket& b = st.buckets[p.bucket];
    p.tensor.set_grad(b.flat.slice(0, p.offset, p.offset + p.tensor.numel()).reshape(p.tensor.shape()));
  }
  for (const Bucket& b : st.buckets) stats_.reduced_bytes += static_cast<double>(b.flat.nbytes());
  reset_step();
}

Ddp::NoSync::NoSync(Ddp& ddp) : ddp_(ddp), prev_(ddp.sync_) { ddp_.sync_ = false; }
Ddp::NoSync::~NoSync() { ddp_.sync_ = prev_; }

}  // namespace cohort::parallel
