// conv2d on cuDNN's legacy convolution API (compiled only when cuDNN was found: COHORT_WITH_CUDNN).
//
// A Plan holds, per device, dtype and geometry, the four descriptors (x, y: NCHW tensors; w: an
// NCHW filter; the convolution: padding, stride, dilation, groups, cross-correlation as in PyTorch)
// and, made on first use, the algorithm of each direction (forward, backward data, backward
// filter): the first of cuDNN's heuristic ranking (cudnnGet*Algorithm_v7) that is supported, needs
// at most 1 GiB of workspace and, for f32 without cuda::allow_tf32(), does not use tensor cores
// (then run with CUDNN_FMA_MATH: cuDNN's default math would take TF32 on Ampere and later). Plans
// are cached per thread, so a training step makes none after the first. The workspace is a tensor
// from the caching allocator, alive for the call (stream-ordered, like every tensor).
//
// Precision: f32 and 16-bit data compute in f32 (16-bit data is cuDNN's "pseudo" half/bf16
// configuration), f64 in f64. cuDNN's handle is, like cuBLAS's, one per device and thread (from a
// pool when threads exit), bound to the current stream before each call.
#include <cudnn.h>

#include <array>
#include <climits>
#include <map>
#include <memory>
#include <vector>

#include "cohort/core/cuda.h"
#include "cuda-impl.h"
#include "handle_pool-impl.h"
#include "dnn-ops-impl.h"

#define COHORT_CUDNN_CHECK(expr)                                                       \
  do {                                                                                 \
    const cudnnStatus_t cohort_cudnn_status_ = (expr);                                 \
    if (cohort_cudnn_status_ != CUDNN_STATUS_SUCCESS) {                                \
      ::cohort::detail::cuda::cudnn_fail(cohort_cudnn_status_, #expr, __FILE__, __LINE__); \
    }                                                                                  \
  } while (0)

namespace cohort::detail::cuda {

[[noreturn]] void cudnn_fail(cudnnStatus_t status, const char* what, const char* file, int line);

void cudnn_fail(cudnnStatus_t status, const char* what, const char* file, int line) {
  char last[512] = {};
  cudnnGetLastErrorString(last, sizeof last);
  std::string hint;
  if (status == CUDNN_STATUS_NOT_SUPPORTED || status == CUDNN_STATUS_BAD_PARAM) {
    hint = "; cuDNN does not take this convolution (shapes, options, dtype): please report it with the shapes";
  } else if (status == CUDNN_STATUS_ALLOC_FAILED) {
    hint = "; the device is out of memory: use a smaller batch, free tensors, or cuda::empty_cache()";
  }
  throw DeviceError(str_cat("cuDNN error ", cudnnGetErrorString(status), " in ", what, last[0] != '\0' ? " (" : "",
                            last, last[0] != '\0' ? ")" : "", hint),
                    file, line);
}

namespace {

constexpr size_t kMaxWorkspace = size_t{1} << 30;

// ---- handles: one per device and thread, pooled across threads (handle_pool-impl.h) ----

struct DeviceHandle {
  cudnnHandle_t handle = nullptr;
  bool bound = false;
  cudaStream_t stream = nullptr;
};

// The calling thread's handle for `device` (the current device), bound to `stream`.
cudnnHandle_t cudnn_handle(int device, cudaStream_t stream) {
  thread_local ThreadSlots<DeviceHandle> th;
  DeviceHandle& h = th.at(device);
  if (h.handle == nullptr) {
    h.handle = HandlePool<cudnnHandle_t>::instance().take(device);
    if (h.handle == nullptr) COHORT_CUDNN_CHECK(cudnnCreate(&h.handle));
    h.bound = false;
  }
  if (!h.bound || h.stream != stream) {
    COHORT_CUDNN_CHECK(cudnnSetStream(h.handle, stream));
    h.bound = true;
    h.stream = stream;
  }
  return h.handle;
}

// ---- descriptors ----

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc() { COHORT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&d)); }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  FilterDesc() { COHORT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&d)); }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};

struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  ConvDesc() { COHORT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d)); }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// The algorithm of one direction, chosen on first use.
struct Algo {
  enum class State { unknown, chosen, none } state = State::unknown;
  int algo = 0;  // a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;  // bytes
};

struct Plan {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  cudnnMathType_t query_math = CUDNN_DEFAULT_MATH;  // set while asking the heuristics
  bool f32_without_tf32 = false;
  Algo fwd, bwd_data, bwd_filter;
};

cudnnDataType_t data_type(DType dt) {
  switch (dt) {
    case DType::f32: return CUDNN_DATA_FLOAT;
    case DType::f64: return CUDNN_DATA_DOUBLE;
    case DType::f16: return CUDNN_DATA_HALF;
    case DType::bf16: return CUDNN_DATA_BFLOAT16;
    default: break;
  }
  COHORT_THROW(DTypeError, "conv2d on CUDA: expected f32, f64, bf16 or f16, got ", dtype_name(dt));
}

int to_int(int64_t v, const char* what) {
  COHORT_CHECK(v >= 0 && v <= INT_MAX, ShapeError, "conv2d on CUDA: ", what, " is ", v,
               ", beyond the 32-bit int cuDNN takes; split the batch");
  return static_cast<int>(v);
}

// A descriptor call: true on success; false when cuDNN refuses a 16-bit dtype (NOT_SUPPORTED,
// BAD_PARAM), which makes the plan unusable and conv2d compute in f32; any other failure throws.
bool described(cudnnStatus_t status, bool half, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return true;
  if (half && (status == CUDNN_STATUS_NOT_SUPPORTED || status == CUDNN_STATUS_BAD_PARAM)) return false;
  cudnn_fail(status, what, __FILE__, __LINE__);
}

bool set_tensor(const TensorDesc& d, cudnnDataType_t type, bool half, int64_t n, int64_t c, int64_t h, int64_t w) {
  COHORT_CHECK(n * c * h * w <= INT_MAX, ShapeError, "conv2d on CUDA: a tensor of shape (", n, ", ", c, ", ", h,
               ", ", w, ") has more than 2^31 elements, cuDNN's limit for one call; split the batch");
  return described(cudnnSetTensor4dDescriptor(d.d, CUDNN_TENSOR_NCHW, type, to_int(n, "N"),
                                              to_int(c, "a channel count"), to_int(h, "a height"), to_int(w, "a width")),
                   half, "cudnnSetTensor4dDescriptor");
}

using PlanKey = std::array<int64_t, 14>;

Plan& plan_for(const ConvGeometry& g, DType dt, int device) {
  const bool tf32 = dt == DType::f32 && tf32_allowed();
  const PlanKey key{device,   static_cast<int64_t>(dt), tf32,       g.n,         g.c_in,   g.h,      g.w,
                    g.c_out, g.kh,                     g.kw,       g.stride,    g.padding, g.dilation, g.groups};
  thread_local std::map<PlanKey, std::unique_ptr<Plan>> plans;
  std::unique_ptr<Plan>& slot = plans[key];
  if (slot) return *slot;
  auto p = std::make_unique<Plan>();
  const cudnnDataType_t type = data_type(dt);
  const bool half = dt == DType::bf16 || dt == DType::f16;
  COHORT_CHECK(g.c_out * (g.c_in / g.groups) * g.kh * g.kw <= INT_MAX, ShapeError,
               "conv2d on CUDA: the weight has more than 2^31 elements, cuDNN's limit");
  const int pad = to_int(g.padding, "the padding"), stride = to_int(g.stride, "the stride");
  const int dilation = to_int(g.dilation, "the dilation");
  const bool usable =
      set_tensor(p->x, type, half, g.n, g.c_in, g.h, g.w) && set_tensor(p->y, type, half, g.n, g.c_out, g.ho, g.wo) &&
      described(cudnnSetFilter4dDescriptor(p->w.d, type, CUDNN_TENSOR_NCHW, to_int(g.c_out, "C_out"),
                                           to_int(g.c_in / g.groups, "C_in/groups"), to_int(g.kh, "kH"),
                                           to_int(g.kw, "kW")),
                half, "cudnnSetFilter4dDescriptor") &&
      described(cudnnSetConvolution2dDescriptor(p->conv.d, pad, pad, stride, stride, dilation, dilation,
                                                CUDNN_CROSS_CORRELATION,
                                                dt == DType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT),
                half, "cudnnSetConvolution2dDescriptor") &&
      described(cudnnSetConvolutionGroupCount(p->conv.d, to_int(g.groups, "groups")), half,
                "cudnnSetConvolutionGroupCount");
  if (!usable) p->fwd.state = p->bwd_data.state = p->bwd_filter.state = Algo::State::none;
  p->f32_without_tf32 = dt == DType::f32 && !tf32;
  p->query_math = p->f32_without_tf32 ? CUDNN_FMA_MATH : dt == DType::f64 ? CUDNN_DEFAULT_MATH : CUDNN_TENSOR_OP_MATH;
  slot = std::move(p);
  return *slot;
}

// The first usable result of a heuristic ranking (see the top of the file).
template <class Perf>
bool pick(const Perf* results, int count, bool f32_without_tf32, Algo& out) {
  for (int i = 0; i < count; ++i) {
    const Perf& r = results[i];
    if (r.status != CUDNN_STATUS_SUCCESS || r.memory > kMaxWorkspace) continue;
    cudnnMathType_t math = r.mathType;
    if (f32_without_tf32) {
      if (math == CUDNN_TENSOR_OP_MATH || math == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
      math = CUDNN_FMA_MATH;
    }
    out.algo = static_cast<int>(r.algo);
    out.math = math;
    out.state = Algo::State::chosen;
    return true;
  }
  out.state = Algo::State::none;
  return false;
}

// A query that fails with NOT_SUPPORTED (a dtype this cuDNN lacks) counts as "no algorithm".
bool query_ok(cudnnStatus_t status, const char* what) {
  if (status == CUDNN_STATUS_NOT_SUPPORTED || status == CUDNN_STATUS_BAD_PARAM) return false;
  if (status != CUDNN_STATUS_SUCCESS) cudnn_fail(status, what, __FILE__, __LINE__);
  return true;
}

bool choose_forward(cudnnHandle_t h, Plan& p) {
  if (p.fwd.state != Algo::State::unknown) return p.fwd.state == Algo::State::chosen;
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.d, p.query_math));
  cudnnConvolutionFwdAlgoPerf_t results[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int count = 0;
  const cudnnStatus_t s = cudnnGetConvolutionForwardAlgorithm_v7(h, p.x.d, p.w.d, p.conv.d, p.y.d,
                                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &count, results);
  if (!query_ok(s, "cudnnGetConvolutionForwardAlgorithm_v7") || !pick(results, count, p.f32_without_tf32, p.fwd)) {
    p.fwd.state = Algo::State::none;
    return false;
  }
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.d, p.fwd.math));
  COHORT_CUDNN_CHECK(cudnnGetConvolutionForwardWorkspaceSize(
      h, p.x.d, p.w.d, p.conv.d, p.y.d, static_cast<cudnnConvolutionFwdAlgo_t>(p.fwd.algo), &p.fwd.workspace));
  return true;
}

bool choose_backward_data(cudnnHandle_t h, Plan& p) {
  if (p.bwd_data.state != Algo::State::unknown) return p.bwd_data.state == Algo::State::chosen;
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.d, p.query_math));
  cudnnConvolutionBwdDataAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
  int count = 0;
  const cudnnStatus_t s = cudnnGetConvolutionBackwardDataAlgorithm_v7(
      h, p.w.d, p.y.d, p.conv.d, p.x.d, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &count, results);
  if (!query_ok(s, "cudnnGetConvolutionBackwardDataAlgorithm_v7") ||
      !pick(results, count, p.f32_without_tf32, p.bwd_data)) {
    p.bwd_data.state = Algo::State::none;
    return false;
  }
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.d, p.bwd_data.math));
  COHORT_CUDNN_CHECK(cudnnGetConvolutionBackwardDataWorkspaceSize(
      h, p.w.d, p.y.d, p.conv.d, p.x.d, static_cast<cudnnConvolutionBwdDataAlgo_t>(p.bwd_data.algo),
      &p.bwd_data.workspace));
  return true;
}

bool choose_backward_filter(cudnnHandle_t h, Plan& p) {
  if (p.bwd_filter.state != Algo::State::unknown) return p.bwd_filter.state == Algo::State::chosen;
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.d, p.query_math));
  cudnnConvolutionBwdFilterAlgoPerf_t results[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
  int count = 0;
  const cudnnStatus_t s = cudnnGetConvolutionBackwardFilterAlgorithm_v7(
      h, p.x.d, p.y.d, p.conv.d, p.w.d, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &count, results);
  if (!query_ok(s, "cudnnGetConvolutionBackwardFilterAlgorithm_v7") ||
      !pick(results, count, p.f32_without_tf32, p.bwd_filter)) {
    p.bwd_filter.state = Algo::State::none;
    return false;
  }
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(p.conv.d, p.bwd_filter.math));
  COHORT_CUDNN_CHECK(cudnnGetConvolutionBackwardFilterWorkspaceSize(
      h, p.x.d, p.y.d, p.conv.d, p.w.d, static_cast<cudnnConvolutionBwdFilterAlgo_t>(p.bwd_filter.algo),
      &p.bwd_filter.workspace));
  return true;
}

// An execution call: a 16-bit convolution that cuDNN refuses at run time (NOT_SUPPORTED) marks the
// direction unusable and returns false (the caller computes in f32); any other failure throws.
bool ran(cudnnStatus_t status, DType dt, Algo& algo, const char* what) {
  if (status == CUDNN_STATUS_SUCCESS) return true;
  if ((dt == DType::bf16 || dt == DType::f16) && status == CUDNN_STATUS_NOT_SUPPORTED) {
    algo.state = Algo::State::none;
    return false;
  }
  cudnn_fail(status, what, __FILE__, __LINE__);
}

// Scaling factors: double for f64 data, float otherwise (cuDNN's rule).
struct Scalars {
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
  bool f64;
  explicit Scalars(DType dt) : f64(dt == DType::f64) {}
  const void* one() const { return f64 ? static_cast<const void*>(&d1) : static_cast<const void*>(&f1); }
  const void* zero() const { return f64 ? static_cast<const void*>(&d0) : static_cast<const void*>(&f0); }
};

Tensor workspace(size_t bytes, const Device& device) {
  if (bytes == 0) return Tensor();
  return Tensor::empty({static_cast<int64_t>((bytes + 7) / 8)}, TensorOptions(DType::i64).with_device(device));
}

void* data_or_null(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

// What a direction's call needs: the plan, the handle on the current stream, its workspace.
struct Call {
  DeviceGuard guard;
  Plan& plan;
  cudnnHandle_t handle;
  Scalars scalars;
  Call(const ConvGeometry& g, const Tensor& out)
      : guard(out.device().index),
        plan(plan_for(g, out.dtype(), out.device().index)),
        handle(cudnn_handle(out.device().index, stream_of(out))),
        scalars(out.dtype()) {}
};

}  // namespace

bool conv_forward(const ConvGeometry& g, const Tensor& x, const Tensor& weight, const Tensor& y) {
  check_same_cuda_device("conv2d", y.device(), {&x, &weight});
  Call c(g, y);
  if (!choose_forward(c.handle, c.plan)) {
    COHORT_CHECK(y.dtype() == DType::bf16 || y.dtype() == DType::f16, DeviceError,
                 "conv2d on CUDA: cuDNN offers no forward algorithm for ", dtype_name(y.dtype()), " input of shape (",
                 g.n, ", ", g.c_in, ", ", g.h, ", ", g.w, "), weight (", g.c_out, ", ", g.c_in / g.groups, ", ", g.kh,
                 ", ", g.kw, "), stride ", g.stride, ", padding ", g.padding, ", dilation ", g.dilation, ", groups ",
                 g.groups, "; please report it, or run this conv2d on the CPU");
    return false;
  }
  const Tensor ws = workspace(c.plan.fwd.workspace, y.device());
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(c.plan.conv.d, c.plan.fwd.math));
  return ran(cudnnConvolutionForward(c.handle, c.scalars.one(), c.plan.x.d, x.raw_data(), c.plan.w.d,
                                     weight.raw_data(), c.plan.conv.d,
                                     static_cast<cudnnConvolutionFwdAlgo_t>(c.plan.fwd.algo), data_or_null(ws),
                                     c.plan.fwd.workspace, c.scalars.zero(), c.plan.y.d, y.raw_data()),
             y.dtype(), c.plan.fwd, "cudnnConvolutionForward");
}

bool conv_backward_data(const ConvGeometry& g, const Tensor& dy, const Tensor& weight, const Tensor& dx) {
  check_same_cuda_device("conv2d backward", dx.device(), {&dy, &weight});
  Call c(g, dx);
  if (!choose_backward_data(c.handle, c.plan)) {
    COHORT_CHECK(dx.dtype() == DType::bf16 || dx.dtype() == DType::f16, DeviceError,
                 "conv2d backward on CUDA: cuDNN offers no backward-data algorithm for ", dtype_name(dx.dtype()),
                 " input of shape (", g.n, ", ", g.c_in, ", ", g.h, ", ", g.w, "), weight (", g.c_out, ", ",
                 g.c_in / g.groups, ", ", g.kh, ", ", g.kw, "); please report it, or run this conv2d on the CPU");
    return false;
  }
  const Tensor ws = workspace(c.plan.bwd_data.workspace, dx.device());
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(c.plan.conv.d, c.plan.bwd_data.math));
  return ran(cudnnConvolutionBackwardData(c.handle, c.scalars.one(), c.plan.w.d, weight.raw_data(), c.plan.y.d,
                                          dy.raw_data(), c.plan.conv.d,
                                          static_cast<cudnnConvolutionBwdDataAlgo_t>(c.plan.bwd_data.algo),
                                          data_or_null(ws), c.plan.bwd_data.workspace, c.scalars.zero(), c.plan.x.d,
                                          dx.raw_data()),
             dx.dtype(), c.plan.bwd_data, "cudnnConvolutionBackwardData");
}

bool conv_backward_weights(const ConvGeometry& g, const Tensor& x, const Tensor& dy, const Tensor& dweight) {
  check_same_cuda_device("conv2d backward", dweight.device(), {&x, &dy});
  Call c(g, dweight);
  if (!choose_backward_filter(c.handle, c.plan)) {
    COHORT_CHECK(dweight.dtype() == DType::bf16 || dweight.dtype() == DType::f16, DeviceError,
                 "conv2d backward on CUDA: cuDNN offers no backward-filter algorithm for ",
                 dtype_name(dweight.dtype()), " input of shape (", g.n, ", ", g.c_in, ", ", g.h, ", ", g.w,
                 "), weight (", g.c_out, ", ", g.c_in / g.groups, ", ", g.kh, ", ", g.kw,
                 "); please report it, or run this conv2d on the CPU");
    return false;
  }
  const Tensor ws = workspace(c.plan.bwd_filter.workspace, dweight.device());
  COHORT_CUDNN_CHECK(cudnnSetConvolutionMathType(c.plan.conv.d, c.plan.bwd_filter.math));
  return ran(cudnnConvolutionBackwardFilter(c.handle, c.scalars.one(), c.plan.x.d, x.raw_data(), c.plan.y.d,
                                            dy.raw_data(), c.plan.conv.d,
                                            static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.plan.bwd_filter.algo),
                                            data_or_null(ws), c.plan.bwd_filter.workspace, c.scalars.zero(),
                                            c.plan.w.d, dweight.raw_data()),
             dweight.dtype(), c.plan.bwd_filter, "cudnnConvolutionBackwardFilter");
}

}  // namespace cohort::detail::cuda
