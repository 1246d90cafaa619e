// The device-parity harness and its runner (see gpu_check.h).
#include "gpu_check.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace cohort::gpu_check {

namespace {

struct Case {
  std::string family, name;
  CaseFn fn;
};

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

// max |x| over the finite elements of a tensor, in double on the CPU (0 for none): the scale of
// the relative tolerance (NaN and inf must match exactly, see max_diff, and set no scale).
double max_abs(const Tensor& t) {
  if (t.numel() == 0) return 0;
  const Tensor d = t.detach().to(Device::cpu()).to(DType::f64).contiguous();
  const double* p = d.data_ptr<double>();
  double m = 0;
  for (int64_t i = 0; i < d.numel(); ++i) {
    if (std::isfinite(p[i])) m = std::max(m, std::fabs(p[i]));
  }
  return m;
}

// max |a - b| with NaN == NaN and inf == inf counted as equal, NaN elsewhere as a mismatch.
double max_diff(const Tensor& a, const Tensor& b) {
  const Tensor x = a.detach().to(Device::cpu()).to(DType::f64).contiguous();
  const Tensor y = b.detach().to(Device::cpu()).to(DType::f64).contiguous();
  const double* p = x.data_ptr<double>();
  const double* q = y.data_ptr<double>();
  double m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (std::isnan(p[i]) || std::isnan(q[i])) {
      if (std::isnan(p[i]) != std::isnan(q[i])) return INFINITY;
      continue;
    }
    if (std::isinf(p[i]) || std::isinf(q[i])) {
      if (p[i] != q[i]) return INFINITY;
      continue;
    }
    m = std::max(m, std::fabs(p[i] - q[i]));
  }
  return m;
}


}  // namespace

Tol tol_for(DType dt) {
  switch (dt) {
    case DType::f64: return {1e-10, 1e-12};
    case DType::f32: return {1e-5, 1e-6};
    case DType::f16: return {2e-3, 1e-3};
    case DType::bf16: return {1.6e-2, 8e-3};
    default: return {0, 0};
  }
}

Registrar::Registrar(const char* family, const char* name, CaseFn fn) { registry().push_back({family, name, fn}); }

Tensor Context::randn(const Shape& shape, DType dt) { return cohort::randn(shape, dt, &gen_); }

Tensor Context::rand(const Shape& shape, double lo, double hi, DType dt) {
  return (cohort::rand(shape, DType::f64, &gen_) * (hi - lo) + lo).to(dt);
}

Tensor Context::randint(int64_t lo, int64_t hi, const Shape& shape, DType dt) {
  return cohort::randint(lo, hi, shape, dt, &gen_);
}

void Context::report(const std::string& what, const std::string& dtype, double err, double bound, bool ok,
                     const std::string& detail) {
  ++checks_;
  if (!ok) ++failures_;
  std::printf("%-4s %-28s %-44s %-5s err %-10.3g bound %-10.3g %s\n", ok ? "PASS" : "FAIL", case_.c_str(),
              what.c_str(), dtype.c_str(), err, bound, detail.c_str());
}

void Context::expect_true(const std::string& what, bool ok, const std::string& detail) {
  report(what, "-", 0, 0, ok, detail);
}

void Context::expect_close(const std::string& what, const Tensor& cpu, const Tensor& gpu, Tol tol) {
  std::string detail;
  bool ok = true;
  if (!cpu.defined() || !gpu.defined()) {
    ok = cpu.defined() == gpu.defined();
    report(what, "-", 0, 0, ok, ok ? "both undefined" : "one side undefined");
    return;
  }
  if (cpu.shape() != gpu.shape()) {
    report(what, dtype_name(cpu.dtype()), INFINITY, 0, false,
           "shapes differ: cpu " + cpu.shape_str() + ", gpu " + gpu.shape_str());
    return;
  }
  if (cpu.dtype() != gpu.dtype()) {
    report(what, dtype_name(cpu.dtype()), INFINITY, 0, false,
           std::string("dtypes differ: gpu ") + dtype_name(gpu.dtype()));
    return;
  }
  if (!gpu.device().is_cuda()) detail = "(the result is not on the GPU) ";
  const double err = max_diff(cpu, gpu);
  const double scale = max_abs(cpu);
  const double bound = tol.atol + tol.rtol * scale;
  ok = err <= bound && gpu.device().is_cuda();
  report(what, dtype_name(cpu.dtype()), err, bound, ok, detail);
}

void Context::parity(const std::string& what, const Tensors& inputs, const std::function<Tensors(const Tensors&)>& fn,
                     Tol tol, bool backward) {
  Tensors cpu_in, gpu_in;
  for (const Tensor& t : inputs) {
    Tensor c = t.detach().clone();
    Tensor g = t.detach().to(Device::cuda(0));
    if (backward && is_floating(t.dtype())) {
      c.requires_grad_();
      g.requires_grad_();
    }
    cpu_in.push_back(c);
    gpu_in.push_back(g);
  }
  Tensors cpu_out, gpu_out;
  try {
    cpu_out = fn(cpu_in);
  } catch (const std::exception& e) {
    report(what, "-", 0, 0, false, std::string("CPU threw: ") + e.what());
    return;
  }
  try {
    gpu_out = fn(gpu_in);
  } catch (const std::exception& e) {
    report(what, "-", 0, 0, false, std::string("GPU threw: ") + e.what());
    return;
  }
  if (cpu_out.size() != gpu_out.size()) {
    report(what, "-", 0, 0, false, "different numbers of outputs");
    return;
  }
  for (size_t k = 0; k < cpu_out.size(); ++k) {
    const Tol t = is_floating(cpu_out[k].dtype()) ? tol : Tol{0, 0};
    expect_close(what + " out" + std::to_string(k), cpu_out[k], gpu_out[k], t);
  }
  if (!backward) return;
  // L = sum_k sum(out_k * w_k) over the floating outputs that carry a gradient.
  Tensor cpu_loss, gpu_loss;
  for (size_t k = 0; k < cpu_out.size(); ++k) {
    if (!is_floating(cpu_out[k].dtype()) || !cpu_out[k].requires_grad()) continue;
    const Tensor w = cohort::randn(cpu_out[k].shape(), DType::f64, &gen_).to(cpu_out[k].dtype());
    const Tensor lc = (cpu_out[k] * w).to(DType::f64).sum();
    const Tensor lg = (gpu_out[k] * w.to(Device::cuda(0))).to(DType::f64).sum();
    cpu_loss = cpu_loss.defined() ? cpu_loss + lc : lc;
    gpu_loss = gpu_loss.defined() ? gpu_loss + lg : lg;
  }
  if (!cpu_loss.defined()) return;
  try {
    cpu_loss.backward();
    gpu_loss.backward();
  } catch (const std::exception& e) {
    report(what + " backward", "-", 0, 0, false, std::string("threw: ") + e.what());
    return;
  }
  for (size_t i = 0; i < cpu_in.size(); ++i) {
    if (!cpu_in[i].requires_grad()) continue;
    expect_close(what + " grad" + std::to_string(i), cpu_in[i].grad(), gpu_in[i].grad(), tol);
  }
}

}  // namespace cohort::gpu_check

namespace {

using namespace cohort;
using namespace cohort::gpu_check;

// Does the CUDA context still work? After an illegal address or a trap every later call fails
// ("sticky" errors), and in-process results after that would blame innocent cases.
bool context_usable() {
  try {
    const Tensor t = cohort::full({4}, 3.0, TensorOptions(DType::f32).with_device(Device::cuda(0)));
    return (t + t).sum().item() == 24.0;
  } catch (const std::exception&) {
    return false;
  }
}

// Runs one case in this process; its asynchronous errors surface in the synchronize inside the try,
// so they are reported against the case that caused them.
void run_case(const Case& c, uint64_t seed, int& failures, int& checks) {
  Context ctx(c.family + "." + c.name, seed);
  try {
    c.fn(ctx);
    cuda::synchronize();
  } catch (const std::exception& e) {
    ctx.expect_true("(case)", false, std::string("threw: ") + e.what());
  }
  failures += ctx.failures();
  checks += ctx.checks();
}

// Runs one case in a fresh process (this program with --exact NAME --child), so that a crash, a
// hang or a broken context stays with that case. Returns the child's exit status, or 124 when it
// was killed after `timeout_s` seconds, or 128 + signal.
int run_isolated(const std::string& self, const std::string& name, double timeout_s) {
  std::fflush(stdout);
  std::vector<std::string> args = {self, "--exact", name, "--child"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, self.c_str(), nullptr, nullptr, argv.data(), environ) != 0) return 127;
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return 124;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

constexpr const char* kUsage =
    "usage: cohort_gpu_checks [--list] [--isolate] [--case-timeout S] [--exact NAME | FILTER]\n"
    "  Runs every device-parity case (or those whose family.name contains FILTER, or exactly NAME)\n"
    "  on the CPU and on cuda:0 and compares them; exit 0 all passed, 1 a comparison failed,\n"
    "  2 the CUDA context broke (rerun with --isolate), 77 no usable GPU.\n"
    "  --list          print the case names and exit (needs no GPU)\n"
    "  --isolate       run each case in its own process (a crash or a broken context stays with\n"
    "                  its case); the names of the failed cases end the output\n"
    "  --case-timeout  seconds before an isolated case is killed (default 120)\n";

}  // namespace

int main(int argc, char** argv) {
  // Line-buffered even into a pipe: a case that crashes the process must not take the lines before it.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  bool list = false, isolate = false, child = false;
  double case_timeout = 120;
  std::string filter, exact;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--list") {
      list = true;
    } else if (a == "--isolate") {
      isolate = true;
    } else if (a == "--child") {
      child = true;
    } else if ((a == "--exact" || a == "--case-timeout") && i + 1 < argc) {
      if (a == "--exact") exact = argv[++i];
      else case_timeout = std::atof(argv[++i]);
    } else if (a == "-h" || a == "--help") {
      std::printf("%s", kUsage);
      return 0;
    } else if (!a.empty() && a[0] != '-' && filter.empty()) {
      filter = a;
    } else {
      std::fprintf(stderr, "cohort_gpu_checks: unexpected argument '%s'\n%s", a.c_str(), kUsage);
      return 2;
    }
  }
  std::vector<const Case*> selected;
  for (const auto& c : registry()) {
    const std::string full = c.family + "." + c.name;
    if (!exact.empty() ? full == exact : full.find(filter) != std::string::npos) selected.push_back(&c);
  }
  if (list) {
    for (const Case* c : selected) std::printf("%s.%s\n", c->family.c_str(), c->name.c_str());
    return 0;
  }
  if (selected.empty()) {
    std::fprintf(stderr, "cohort_gpu_checks: no case matches '%s' (--list shows them)\n",
                 exact.empty() ? filter.c_str() : exact.c_str());
    return 2;
  }
  if (!cuda::is_available()) {
    std::printf("cohort_gpu_checks: skipped: %s\n", cuda::unavailable_reason().c_str());
    return 77;
  }
  // A case's seed is its position in the whole registry, so a case draws the same inputs whether
  // it runs alone, isolated or with the others.
  auto seed_of = [](const Case* c) { return static_cast<uint64_t>(c - registry().data()) + 1; };
  if (child) {
    int failures = 0, checks = 0;
    run_case(*selected.front(), seed_of(selected.front()), failures, checks);
    return failures == 0 ? 0 : 1;
  }
  const cuda::DeviceProperties props = cuda::device_properties(0);
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::printf("# cohort_gpu_checks on %s (compute capability %d.%d, %d SMs, %.0f GiB), %s%s\n", props.name.c_str(),
              props.major, props.minor, props.multiprocessors, props.total_memory / 1073741824.0, date,
              isolate ? ", one process per case" : "");
  if (isolate) {
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::vector<std::string> failed;
    for (const Case* c : selected) {
      const std::string full = c->family + "." + c->name;
      const int rc = run_isolated(self, full, case_timeout);
      if (rc == 0) continue;
      failed.push_back(full);
      if (rc != 1) {
        std::printf("FAIL %-28s %-44s exit %d%s\n", full.c_str(), "(process)", rc,
                    rc == 124 ? " (killed: over --case-timeout)" : rc > 128 ? " (killed by a signal)" : "");
      }
    }
    std::printf("# %zu cases in their own processes, %zu failed, on %s, %s\n", selected.size(), failed.size(),
                props.name.c_str(), date);
    if (!failed.empty()) {
      std::printf("# failed cases:");
      for (const auto& f : failed) std::printf(" %s", f.c_str());
      std::printf("\n");
    }
    return failed.empty() ? 0 : 1;
  }
  int failures = 0, checks = 0, cases = 0;
  for (const Case* c : selected) {
    run_case(*c, seed_of(c), failures, checks);
    ++cases;
    if (!context_usable()) {
      std::printf("# the CUDA context is unusable after %s.%s: later results would be meaningless; rerun with "
                  "--isolate\n",
                  c->family.c_str(), c->name.c_str());
      return 2;
    }
  }
  std::printf("# %d cases, %d comparisons, %d failed, on %s, %s\n", cases, checks, failures, props.name.c_str(), date);
  return failures == 0 ? 0 : 1;
}
