// Optimizer steps, gradient norms and loss-scale checks on CUDA tensors: a few launches for a
// whole list of parameters. See optim-ops-impl.h for the contract.
//
// Multi-tensor launches. A launch takes a Chunk: up to kMaxTensors tensors' data pointers, element
// counts and two per-tensor scalars, passed by value as the kernel's argument (under the 4 KB that
// every CUDA version allows). The grid is (blocks, tensors): block (x, y) walks tensor y with a
// grid-stride loop over x. Blocks of a small tensor that find no work return at once, which costs
// far less than a launch per tensor (a GPT has a dozen parameters per layer). The formulas are the
// CPU loops' (optim/sgd_adam.cpp), in the same computing type; nvcc may contract a * b + c into
// one fused multiply-add where the CPU rounds twice, so results can differ in the last bit.
#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <utility>
#include <vector>

#include "block_reduce-impl.cuh"
#include "device_math-impl.cuh"
#include "loops-impl.cuh"
#include "optim-ops-impl.h"

namespace cohort::detail::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kMaxTensors = 48;
// Blocks per tensor: enough for every SM of an H100 to hold a few, each thread then loops.
constexpr int64_t kMaxBlocksPerTensor = 512;
constexpr int64_t kItemsPerThread = 4;  // below this many elements per thread, fewer blocks

// The tensors of one launch (a kernel argument).
template <int N>
struct Chunk {
  void* ptr[N][kMaxTensors];  // ptr[k][i]: operand k of tensor i (nullptr: not there)
  int64_t numel[kMaxTensors];
  double a[kMaxTensors];  // per-tensor scalars, meaning given by the kernel
  double b[kMaxTensors];
  int count;
};
static_assert(sizeof(Chunk<4>) + 256 <= 4096, "a Chunk must fit in the kernel argument space with the scalars");

// One tensor of a list and its companions (a parameter, its gradient and state buffers), with its
// scalars. A null companion gives a null pointer to the kernel.
template <int N>
struct Item {
  const Tensor* t[N] = {};
  double a = 0, b = 0;
};

template <int N>
struct Launch {
  int device = 0;
  DType dtype = DType::f32;
  unsigned blocks = 1;
  Chunk<N> chunk;
};

// Checks the items and packs them into launches: split by (device, dtype) in order of first
// appearance, then into chunks of kMaxTensors; empty tensors are left out.
template <int N>
std::vector<Launch<N>> plan(const std::vector<Item<N>>& items, const char* op) {
  std::vector<std::pair<std::pair<int, DType>, std::vector<const Item<N>*>>> groups;
  for (const Item<N>& item : items) {
    const Tensor& first = *item.t[0];
    COHORT_CHECK(first.defined() && first.device().is_cuda(), DeviceError, op,
                 ": internal: expected CUDA tensors, got ",
                 first.defined() ? first.device().str() : "an undefined one");
    for (int k = 0; k < N; ++k) {
      const Tensor* t = item.t[k];
      if (t == nullptr) continue;
      COHORT_CHECK(t->defined() && t->device() == first.device() && t->dtype() == first.dtype() &&
                       t->numel() == first.numel() && t->is_contiguous(),
                   ValueError, op, ": internal: operand ", k, " must be a contiguous ", dtype_name(first.dtype()),
                   " tensor of ", first.numel(), " elements on ", first.device().str(), " like operand 0");
    }
    if (first.numel() == 0) continue;
    const std::pair<int, DType> key{first.device().index, first.dtype()};
    auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == key; });
    if (it == groups.end()) it = groups.insert(groups.end(), {key, {}});
    it->second.push_back(&item);
  }
  std::vector<Launch<N>> launches;
  for (const auto& [key, members] : groups) {
    for (size_t begin = 0; begin < members.size(); begin += kMaxTensors) {
      Launch<N> l{};
      l.device = key.first;
      l.dtype = key.second;
      int64_t most = 0;
      const size_t end = std::min(members.size(), begin + kMaxTensors);
      for (size_t j = begin; j < end; ++j) {
        const Item<N>& item = *members[j];
        const int i = l.chunk.count++;
        for (int k = 0; k < N; ++k) l.chunk.ptr[k][i] = item.t[k] ? item.t[k]->raw_data() : nullptr;
        l.chunk.numel[i] = item.t[0]->numel();
        l.chunk.a[i] = item.a;
        l.chunk.b[i] = item.b;
        most = std::max(most, item.t[0]->numel());
      }
      const int64_t per_block = kThreads * kItemsPerThread;
      l.blocks = static_cast<unsigned>(std::clamp<int64_t>((most + per_block - 1) / per_block, 1, kMaxBlocksPerTensor));
      launches.push_back(l);
    }
  }
  return launches;
}

template <class L>
dim3 grid_of(const L& l) {
  return dim3(l.blocks, static_cast<unsigned>(l.chunk.count));
}

// Grid-stride loop bounds of block (x, y) over tensor y.
__device__ __forceinline__ int64_t first_index() { return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ __forceinline__ int64_t index_stride() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// |x| <= the largest finite value: false for inf and NaN.
__device__ __forceinline__ bool d_finite(float x) { return fabsf(x) <= FLT_MAX; }
__device__ __forceinline__ bool d_finite(double x) { return fabs(x) <= DBL_MAX; }

// ---- SGD: ptr = {param, grad, momentum buffer or null}; a = 1 when the buffer is fresh ----

template <class T>
__global__ void sgd_kernel(Chunk<3> c, double lr, double wd, double momentum, double one_minus_dampening,
                           bool nesterov) {
  using A = device_acc_t<T>;
  const int t = blockIdx.y;
  T* __restrict__ p = static_cast<T*>(c.ptr[0][t]);
  const T* __restrict__ g = static_cast<const T*>(c.ptr[1][t]);
  T* __restrict__ buf = static_cast<T*>(c.ptr[2][t]);
  const bool fresh = c.a[t] != 0;
  const int64_t n = c.numel[t];
  const A a_lr = A(lr), a_wd = A(wd), a_mom = A(momentum), a_damp = A(one_minus_dampening);
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const A pi = to_acc(p[i]);
    const A d = to_acc(g[i]) + a_wd * pi;
    if (buf == nullptr) {
      p[i] = from_acc<T>(pi - a_lr * d);
      continue;
    }
    const A m = fresh ? d : a_mom * to_acc(buf[i]) + a_damp * d;  // buf = d on the first step
    buf[i] = from_acc<T>(m);
    p[i] = from_acc<T>(pi - a_lr * (nesterov ? d + a_mom * m : m));
  }
}

// ---- Adam: ptr = {param, grad, exp_avg, exp_avg_sq}; a = step size, b = sqrt(1 - beta2^t) ----

struct AdamScalars {
  double b1, one_minus_b1, b2, one_minus_b2, eps, wd, decay;  // decay = 1 - lr wd (AdamW)
  bool decoupled;
};

template <class T>
__global__ void adam_kernel(Chunk<4> c, AdamScalars s) {
  using A = device_acc_t<T>;
  const int t = blockIdx.y;
  T* __restrict__ p = static_cast<T*>(c.ptr[0][t]);
  const T* __restrict__ g = static_cast<const T*>(c.ptr[1][t]);
  T* __restrict__ m = static_cast<T*>(c.ptr[2][t]);
  T* __restrict__ v = static_cast<T*>(c.ptr[3][t]);
  const int64_t n = c.numel[t];
  const A a_b1 = A(s.b1), a_1mb1 = A(s.one_minus_b1), a_b2 = A(s.b2), a_1mb2 = A(s.one_minus_b2), a_eps = A(s.eps);
  const A a_step = A(c.a[t]), a_bc2 = A(c.b[t]), a_wd = A(s.wd), a_decay = A(s.decay);
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const A p0 = to_acc(p[i]), g0 = to_acc(g[i]);
    const A pi = s.decoupled ? p0 * a_decay : p0;
    const A gi = s.decoupled ? g0 : g0 + a_wd * p0;
    const A mi = a_b1 * to_acc(m[i]) + a_1mb1 * gi;
    const A vi = a_b2 * to_acc(v[i]) + a_1mb2 * gi * gi;
    m[i] = from_acc<T>(mi);
    v[i] = from_acc<T>(vi);
    p[i] = from_acc<T>(pi - a_step * mi / (d_sqrt(vi) / a_bc2 + a_eps));
  }
}

// ---- sum of squares: each block writes its partial sum; one block adds the partials in order ----

template <class T>
__global__ void sum_squares_kernel(Chunk<1> c, double* partials) {
  __shared__ double scratch[kWarpSize];
  const int t = blockIdx.y;
  const T* __restrict__ x = static_cast<const T*>(c.ptr[0][t]);
  const int64_t n = c.numel[t];
  double acc = 0;
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const double v = static_cast<double>(to_acc(x[i]));
    acc += v * v;
  }
  acc = block_reduce_sum(acc, scratch);
  if (threadIdx.x == 0) partials[static_cast<int64_t>(t) * gridDim.x + blockIdx.x] = acc;
}

constexpr int kSumThreads = 1024;

__global__ void sum_partials_kernel(const double* partials, int64_t n, double* out) {
  __shared__ double scratch[kWarpSize];
  double acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += partials[i];
  acc = block_reduce_sum(acc, scratch);
  if (threadIdx.x == 0) *out = acc;
}

// ---- scaling: a = the factor (already rounded as the CPU rounds it) ----

template <class T>
__global__ void scale_kernel(Chunk<1> c) {
  using A = device_acc_t<T>;
  const int t = blockIdx.y;
  T* __restrict__ x = static_cast<T*>(c.ptr[0][t]);
  const int64_t n = c.numel[t];
  const A s = A(c.a[t]);
  for (int64_t i = first_index(); i < n; i += index_stride()) x[i] = from_acc<T>(to_acc(x[i]) * s);
}

// Every thread that saw a non-finite value writes 1 to found_inf: the same value, so the racing
// stores are harmless (PyTorch's _amp_foreach_non_finite_check_and_unscale_ does the same).
template <class T>
__global__ void unscale_kernel(Chunk<1> c, float inv_scale, float* found_inf) {
  using A = device_acc_t<T>;
  const int t = blockIdx.y;
  T* __restrict__ x = static_cast<T*>(c.ptr[0][t]);
  const int64_t n = c.numel[t];
  const A s = A(inv_scale);
  bool bad = false;
  for (int64_t i = first_index(); i < n; i += index_stride()) {
    const A v = to_acc(x[i]);
    bad = bad || !d_finite(v);
    x[i] = from_acc<T>(v * s);
  }
  if (bad) *found_inf = 1.0f;
}

// `v` as the CPU's mul_(t, v) sees it: converted to t's dtype (through float for 16-bit floats, as
// detail::cast does) and back to the computing type.
double rounded_to(DType dt, double v) {
  switch (dt) {
    case DType::f64:
      return v;
    case DType::bf16:
      return static_cast<float>(BFloat16(static_cast<float>(v)));
    case DType::f16:
      return static_cast<float>(Half(static_cast<float>(v)));
    default:
      return static_cast<float>(v);
  }
}

void bump_versions(const std::vector<Tensor>& tensors) {
  for (const Tensor& t : tensors) t.storage()->bump_version();
}

}  // namespace

void sgd_step(const std::vector<SgdTensors>& tensors, double lr, double weight_decay, double momentum, double dampening,
              bool nesterov) {
  std::vector<Item<3>> items(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    items[i].t[0] = &tensors[i].param;
    items[i].t[1] = &tensors[i].grad;
    items[i].t[2] = tensors[i].momentum_buffer.defined() ? &tensors[i].momentum_buffer : nullptr;
    items[i].a = tensors[i].fresh ? 1.0 : 0.0;
  }
  for (const Launch<3>& l : plan(items, "SGD")) {
    DeviceGuard guard(l.device);
    dispatch_device_floating(l.dtype, "SGD", [&](auto tag) {
      using T = decltype(tag);
      sgd_kernel<T><<<grid_of(l), kThreads, 0, current_cuda_stream(l.device)>>>(l.chunk, lr, weight_decay, momentum,
                                                                                1 - dampening, nesterov);
      COHORT_CUDA_CHECK_LAUNCH();
    });
  }
}

void adam_step(const std::vector<AdamTensors>& tensors, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled) {
  std::vector<Item<4>> items(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    items[i].t[0] = &tensors[i].param;
    items[i].t[1] = &tensors[i].grad;
    items[i].t[2] = &tensors[i].exp_avg;
    items[i].t[3] = &tensors[i].exp_avg_sq;
    items[i].a = tensors[i].step_size;
    items[i].b = tensors[i].bias_correction2_sqrt;
  }
  const AdamScalars s{beta1, 1 - beta1, beta2, 1 - beta2, eps, weight_decay, 1 - lr * weight_decay, decoupled};
  for (const Launch<4>& l : plan(items, decoupled ? "AdamW" : "Adam")) {
    DeviceGuard guard(l.device);
    dispatch_device_floating(l.dtype, "Adam", [&](auto tag) {
      using T = decltype(tag);
      adam_kernel<T><<<grid_of(l), kThreads, 0, current_cuda_stream(l.device)>>>(l.chunk, s);
      COHORT_CUDA_CHECK_LAUNCH();
    });
  }
}

void sum_of_squares(const std::vector<Tensor>& tensors, const Tensor& out) {
  COHORT_CHECK(out.device().is_cuda() && out.dtype() == DType::f64 && out.numel() == 1 && out.is_contiguous(),
               ValueError, "sum_of_squares: internal: the result must be a one-element f64 CUDA tensor");
  std::vector<Item<1>> items(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) items[i].t[0] = &tensors[i];
  const std::vector<Launch<1>> launches = plan(items, "clip_grad_norm");
  int64_t total = 0;
  for (const Launch<1>& l : launches) {
    COHORT_CHECK(l.device == out.device().index, DeviceError, "clip_grad_norm: gradients on cuda:", l.device,
                 " and on ", out.device().str(), " in one sum; sum each device's gradients separately");
    total += static_cast<int64_t>(l.blocks) * l.chunk.count;
  }
  DeviceGuard guard(out.device().index);
  cudaStream_t stream = current_cuda_stream(out.device().index);
  if (total == 0) {
    COHORT_CUDA_CHECK(cudaMemsetAsync(out.raw_data(), 0, sizeof(double), stream));
    return;
  }
  // (total) per-block partial sums, in launch order: the same order every run.
  const Tensor partials = Tensor::empty({total}, TensorOptions(DType::f64).with_device(out.device()));
  double* next = partials.data_ptr<double>();
  for (const Launch<1>& l : launches) {
    dispatch_device_floating(l.dtype, "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      sum_squares_kernel<T><<<grid_of(l), kThreads, 0, stream>>>(l.chunk, next);
      COHORT_CUDA_CHECK_LAUNCH();
    });
    next += static_cast<int64_t>(l.blocks) * l.chunk.count;
  }
  sum_partials_kernel<<<1, kSumThreads, 0, stream>>>(partials.data_ptr<double>(), total, out.data_ptr<double>());
  COHORT_CUDA_CHECK_LAUNCH();
}

void scale_(const std::vector<Tensor>& tensors, double scale) {
  std::vector<Item<1>> items(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    items[i].t[0] = &tensors[i];
    items[i].a = rounded_to(tensors[i].dtype(), scale);
  }
  for (const Launch<1>& l : plan(items, "clip_grad_norm")) {
    DeviceGuard guard(l.device);
    dispatch_device_floating(l.dtype, "clip_grad_norm", [&](auto tag) {
      using T = decltype(tag);
      scale_kernel<T><<<grid_of(l), kThreads, 0, current_cuda_stream(l.device)>>>(l.chunk);
      COHORT_CUDA_CHECK_LAUNCH();
    });
  }
  bump_versions(tensors);
}

void unscale_and_check_(const std::vector<Tensor>& tensors, const Tensor& found_inf, float inv_scale) {
  COHORT_CHECK(found_inf.device().is_cuda() && found_inf.dtype() == DType::f32 && found_inf.numel() == 1, ValueError,
               "GradScaler: internal: found_inf must be a one-element f32 CUDA tensor");
  std::vector<Item<1>> items(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) items[i].t[0] = &tensors[i];
  for (const Launch<1>& l : plan(items, "GradScaler.unscale_")) {
    COHORT_CHECK(l.device == found_inf.device().index, DeviceError, "GradScaler.unscale_: gradients on cuda:", l.device,
                 " checked into a flag on ", found_inf.device().str(), "; use one flag per device");
    DeviceGuard guard(l.device);
    dispatch_device_floating(l.dtype, "GradScaler.unscale_", [&](auto tag) {
      using T = decltype(tag);
      unscale_kernel<T>
          <<<grid_of(l), kThreads, 0, current_cuda_stream(l.device)>>>(l.chunk, inv_scale, found_inf.data_ptr<float>());
      COHORT_CUDA_CHECK_LAUNCH();
    });
  }
  bump_versions(tensors);
}

}  // namespace cohort::detail::cuda
