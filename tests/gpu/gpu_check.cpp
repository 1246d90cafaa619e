// The device-parity harness and its runner (see gpu_check.h).
#include "gpu_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <exception>

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

// max |x| over a tensor, in double on the CPU (0 for an empty tensor).
double max_abs(const Tensor& t) {
  if (t.numel() == 0) return 0;
  const Tensor d = t.detach().to(Device::cpu()).to(DType::f64).contiguous();
  const double* p = d.data_ptr<double>();
  double m = 0;
  for (int64_t i = 0; i < d.numel(); ++i) {
    if (std::isnan(p[i])) return NAN;
    m = std::max(m, std::fabs(p[i]));
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
  const double bound = tol.atol + tol.rtol * (std::isnan(scale) ? 0 : scale);
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

int main(int argc, char** argv) {
  using namespace cohort;
  using namespace cohort::gpu_check;
  if (!cuda::is_available()) {
    std::printf("cohort_gpu_checks: skipped: %s\n", cuda::unavailable_reason().c_str());
    return 77;
  }
  const char* filter = argc > 1 ? argv[1] : "";
  const cuda::DeviceProperties props = cuda::device_properties(0);
  const std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::printf("# cohort_gpu_checks on %s (compute capability %d.%d, %d SMs, %.0f GiB), %s\n", props.name.c_str(),
              props.major, props.minor, props.multiprocessors, props.total_memory / 1073741824.0, date);
  int failures = 0, checks = 0, cases = 0;
  uint64_t seed = 1;
  for (const auto& c : registry()) {
    const std::string full = c.family + "." + c.name;
    if (*filter != '\0' && full.find(filter) == std::string::npos) continue;
    Context ctx(full, seed++);
    try {
      c.fn(ctx);
    } catch (const std::exception& e) {
      ctx.expect_true("(case)", false, std::string("threw: ") + e.what());
    }
    failures += ctx.failures();
    checks += ctx.checks();
    ++cases;
  }
  cuda::synchronize();
  std::printf("# %d cases, %d comparisons, %d failed, on %s, %s\n", cases, checks, failures, props.name.c_str(), date);
  return failures == 0 ? 0 : 1;
}
