// Matrix products on cuBLAS: the handle of each device and thread, its workspaces, and the mapping
// of cohort's row-major strided matrices onto cuBLAS's column-major calls.
//
// Layout. cuBLAS computes C = op(A) op(B) on column-major matrices. A row-major (r, c) matrix with
// leading dim ld is, read column-major, its transpose (c, r) with the same ld. So the row-major
// product out (m, n) = a (m, k) @ b (k, n) is the column-major product
//     out^T (n, m) = b^T (n, k) @ a^T (k, m)
// and each operand X enters as X^T: as it is (op N, ld = its row stride) when its columns are
// contiguous (col stride 1), or with op T (ld = its col stride) when its rows are (row stride 1:
// a transposed view). No copy either way. An output with row stride 1 is handled by computing its
// transpose instead (out^T = b^T a^T: views with swapped strides).
//
// Precision. One compute type per dtype: CUBLAS_COMPUTE_64F for f64; CUBLAS_COMPUTE_32F for f32,
// bf16 and f16 (f32 accumulation), or CUBLAS_COMPUTE_32F_FAST_TF32 for f32 when
// cuda::allow_tf32(). The handle's math mode forbids reduced-precision split-K reductions, so a
// 16-bit product is rounded once, at the end.
//
// Bias. A product with a bias along its rows (linear) runs on cuBLASLt with CUBLASLT_EPILOGUE_BIAS
// when it can (see run_with_bias_epilogue); otherwise the bias is copied into the output and the
// product accumulated onto it.
//
// Handles. cuBLAS handles are expensive to create (~ms) and not safe to share between threads that
// run concurrently, so each thread keeps one per device, made on first use and handed to the next
// thread through a pool when it exits. A handle is bound to the stream of the call (re-bound only
// when the stream changes) together with a 32 MiB workspace owned by that stream (cuBLAS's
// recommendation for Hopper; two streams must never share one): a tensor from the caching
// allocator, so it is stream-ordered like any other.
#include <algorithm>
#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "blas-ops-impl.h"
#include "cublas-impl.h"
#include "cuda-impl.h"
#include "handle_pool-impl.h"
#include "elementwise-ops-impl.h"

namespace cohort::detail {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct StreamWorkspace {
  cudaStream_t stream;
  Tensor buffer;  // kWorkspaceBytes on the handle's device, allocated on `stream`
};

struct DeviceHandle {
  cublasHandle_t handle = nullptr;
  bool bound = false;
  cudaStream_t stream = nullptr;
  std::vector<StreamWorkspace> workspaces;
};

cublasHandle_t take_or_create(int device) {
  cublasHandle_t h = HandlePool<cublasHandle_t>::instance().take(device);
  if (h != nullptr) return h;
  const CublasApi& api = cublas();
  COHORT_CUBLAS_CHECK(api.create(&h));
  COHORT_CUBLAS_CHECK(api.set_math_mode(
      h, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  return h;
}

// The calling thread's handle slot for `device`. On thread exit the handle goes back to the pool,
// its workspaces to the allocator: the next owner re-binds stream and workspace before its first call.
DeviceHandle& thread_handle(int device) {
  thread_local ThreadSlots<DeviceHandle> th;
  return th.at(device);
}

}  // namespace

cublasHandle_t cublas_handle(int device, cudaStream_t stream) {
  DeviceHandle& h = thread_handle(device);
  if (h.handle == nullptr) h.handle = take_or_create(device);
  if (!h.bound || h.stream != stream) {
    const CublasApi& api = cublas();
    auto it = std::find_if(h.workspaces.begin(), h.workspaces.end(),
                           [stream](const StreamWorkspace& w) { return w.stream == stream; });
    if (it == h.workspaces.end()) {
      // Allocated on the current stream, which is `stream` (callers pass current_cuda_stream).
      Tensor buffer = Tensor::empty({static_cast<int64_t>(kWorkspaceBytes / 8)},
                                    TensorOptions(DType::i64).with_device(Device::cuda(device)));
      h.workspaces.push_back({stream, buffer});
      it = h.workspaces.end() - 1;
    }
    // set_stream resets the workspace to cuBLAS's own pool, so the workspace is set after it.
    COHORT_CUBLAS_CHECK(api.set_stream(h.handle, stream));
    COHORT_CUBLAS_CHECK(api.set_workspace(h.handle, it->buffer.raw_data(), kWorkspaceBytes));
    h.bound = true;
    h.stream = stream;
  }
  return h.handle;
}

namespace cuda {

namespace {

// How cuBLAS reads X^T for a (rows, cols) matrix X: op N when X's columns are contiguous (cuBLAS
// then sees the memory as the column-major (cols, rows) matrix X^T), op T when its rows are (the
// memory is X itself, column-major). A dim of size 1 has no stride to speak of, so it is set to
// what makes the leading dim valid. Returns false when neither fits: a stride-0 (broadcast) or
// overlapping matrix, or one with no unit stride.
struct BlasOperand {
  cublasOperation_t op = CUBLAS_OP_N;
  int64_t ld = 1;
};

bool read_transposed(int64_t rows, int64_t cols, int64_t rs, int64_t cs, BlasOperand& out) {
  if (cs == 1 || cols == 1) {
    const int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : rs;
    if (ld >= std::max<int64_t>(cols, 1)) {
      out = {CUBLAS_OP_N, ld};
      return true;
    }
  }
  if (rs == 1 || rows == 1) {
    const int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : cs;
    if (ld >= std::max<int64_t>(rows, 1)) {
      out = {CUBLAS_OP_T, ld};
      return true;
    }
  }
  return false;
}

// Whether the (rows, cols) matrix can be written by cuBLAS as a column-major C^T: columns
// contiguous, ld >= cols.
bool writable_row_major(int64_t rows, int64_t cols, int64_t rs, int64_t cs, int64_t& ld) {
  BlasOperand o;
  if (!read_transposed(rows, cols, rs, cs, o) || o.op != CUBLAS_OP_N) return false;
  ld = o.ld;
  return true;
}

bool takes(const Tensor& t) { return blas_layout_ok(t.size(-2), t.size(-1), t.stride(-2), t.stride(-1)); }

cudaDataType blas_type(DType dt) {
  switch (dt) {
    case DType::f32: return CUDA_R_32F;
    case DType::f64: return CUDA_R_64F;
    case DType::bf16: return CUDA_R_16BF;
    case DType::f16: return CUDA_R_16F;
    default: break;
  }
  COHORT_THROW(DTypeError, "matmul on CUDA: expected f32, f64, bf16 or f16 operands, got ", dtype_name(dt));
}

int to_int(int64_t v, const char* what) {
  COHORT_CHECK(v >= 0 && v <= INT_MAX, ShapeError, "matmul on CUDA: ", what, " is ", v,
               ", beyond the 32-bit int cuBLAS takes; split the product into smaller ones");
  return static_cast<int>(v);
}

// One cuBLAS call: c[i] (m, n) = a[i] (m, k) @ b[i] (k, n) (+ c[i] when accumulate), i < batch.
// Pointers are to the first element; strides in elements.
struct Matrix {
  const void* data;
  int64_t batch_stride, rs, cs;
};

struct Product {
  int64_t batch = 1, m = 0, n = 0, k = 0;
  Matrix a, b;
  void* c = nullptr;
  int64_t c_batch_stride = 0, ldc = 0;
  DType in_dtype = DType::f32, out_dtype = DType::f32;
  bool accumulate = false;
  int device = 0;
  cudaStream_t stream = nullptr;
};

void run(const Product& p) {
  BlasOperand ob, oa;
  const bool ok = read_transposed(p.k, p.n, p.b.rs, p.b.cs, ob) && read_transposed(p.m, p.k, p.a.rs, p.a.cs, oa);
  COHORT_CHECK(ok, ValueError, "matmul on CUDA: internal: an operand layout cuBLAS cannot read reached the call");
  const CublasApi& api = cublas();
  cublasHandle_t handle = cublas_handle(p.device, p.stream);
  const bool f64 = p.in_dtype == DType::f64;
  const cublasComputeType_t compute = f64 ? CUBLAS_COMPUTE_64F
                                      : (p.in_dtype == DType::f32 && tf32_allowed()) ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                                                      : CUBLAS_COMPUTE_32F;
  // Scalars of the compute type, read from host memory (the handle's default pointer mode).
  const float alpha_f = 1.0f, beta_f = p.accumulate ? 1.0f : 0.0f;
  const double alpha_d = 1.0, beta_d = p.accumulate ? 1.0 : 0.0;
  const void* alpha = f64 ? static_cast<const void*>(&alpha_d) : static_cast<const void*>(&alpha_f);
  const void* beta = f64 ? static_cast<const void*>(&beta_d) : static_cast<const void*>(&beta_f);
  const cudaDataType in_type = blas_type(p.in_dtype), out_type = blas_type(p.out_dtype);
  // cuBLAS: C (n, m) = op(A) (n, k) op(B) (k, m), with A = b^T and B = a^T (see the top).
  const int m = to_int(p.n, "the output's column count"), n = to_int(p.m, "the output's row count");
  const int k = to_int(p.k, "the inner dim"), lda = to_int(ob.ld, "a leading dim"), ldb = to_int(oa.ld, "a leading dim");
  const int ldc = to_int(p.ldc, "the output's leading dim");
  if (p.batch == 1) {
    COHORT_CUBLAS_CHECK(api.gemm_ex(handle, ob.op, oa.op, m, n, k, alpha, p.b.data, in_type, lda, p.a.data, in_type,
                                    ldb, beta, p.c, out_type, ldc, compute, CUBLAS_GEMM_DEFAULT));
  } else {
    COHORT_CUBLAS_CHECK(api.gemm_strided_batched_ex(
        handle, ob.op, oa.op, m, n, k, alpha, p.b.data, in_type, lda, p.b.batch_stride, p.a.data, in_type, ldb,
        p.a.batch_stride, beta, p.c, out_type, ldc, p.c_batch_stride, to_int(p.batch, "the batch count"), compute,
        CUBLAS_GEMM_DEFAULT));
  }
}

// ---- cuBLASLt: one product with the bias added in its epilogue ----
//
// linear's forward: out = a @ b + bias, bias (n) added to every row. The plain path copies the
// bias into out and accumulates the product onto it (beta = 1): one more pass over out, written
// and read again. cuBLASLt's CUBLASLT_EPILOGUE_BIAS adds it as the product is stored (column-major,
// the bias runs along cuBLAS's rows: out's columns). Plans (descriptors, layouts and the heuristic's
// algorithm) are cached per thread and shape; the pointers' alignments are part of the shape, as
// the heuristic picks algorithms for them.

// The largest power of two up to 256 that divides the address.
uint32_t alignment(const void* p) {
  uint32_t a = 256;
  while (a > 1 && reinterpret_cast<uintptr_t>(p) % a != 0) a /= 2;
  return a;
}

struct LtKey {
  int device, m, n, k, lda, ldb, ldc, op_a, op_b, in_type, out_type, compute;
  uint32_t align_a, align_b, align_c;
  bool operator==(const LtKey& o) const {
    return std::memcmp(this, &o, sizeof(LtKey)) == 0;
  }
};
struct LtKeyHash {
  size_t operator()(const LtKey& k) const {
    size_t h = 1469598103934665603ull;
    const auto* p = reinterpret_cast<const unsigned char*>(&k);
    for (size_t i = 0; i < sizeof(LtKey); ++i) h = (h ^ p[i]) * 1099511628211ull;
    return h;
  }
};
struct LtPlan {
  bool ok = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

cublasLtHandle_t lt_handle(const CublasLtApi& lt, int device) {
  thread_local std::vector<cublasLtHandle_t> handles;
  if (static_cast<int>(handles.size()) <= device) handles.resize(device + 1, nullptr);
  if (handles[device] == nullptr) COHORT_CUBLAS_CHECK(lt.create(&handles[device]));
  return handles[device];
}

LtPlan make_lt_plan(const CublasLtApi& lt, cublasLtHandle_t handle, const LtKey& key) {
  LtPlan plan;
  const auto op_a = static_cast<cublasOperation_t>(key.op_a), op_b = static_cast<cublasOperation_t>(key.op_b);
  const auto in = static_cast<cudaDataType>(key.in_type), out = static_cast<cudaDataType>(key.out_type);
  COHORT_CUBLAS_CHECK(lt.desc_create(&plan.desc, static_cast<cublasComputeType_t>(key.compute), CUDA_R_32F));
  const int32_t ta = op_a, tb = op_b;
  COHORT_CUBLAS_CHECK(lt.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  COHORT_CUBLAS_CHECK(lt.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  COHORT_CUBLAS_CHECK(lt.desc_set(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue)));
  // Layouts describe the stored matrices: op(A) is (m, k), op(B) (k, n), C and D (m, n).
  COHORT_CUBLAS_CHECK(lt.layout_create(&plan.a, in, op_a == CUBLAS_OP_N ? key.m : key.k,
                                       op_a == CUBLAS_OP_N ? key.k : key.m, key.lda));
  COHORT_CUBLAS_CHECK(lt.layout_create(&plan.b, in, op_b == CUBLAS_OP_N ? key.k : key.n,
                                       op_b == CUBLAS_OP_N ? key.n : key.k, key.ldb));
  COHORT_CUBLAS_CHECK(lt.layout_create(&plan.c, out, key.m, key.n, key.ldc));
  cublasLtMatmulPreference_t pref = nullptr;
  COHORT_CUBLAS_CHECK(lt.pref_create(&pref));
  const uint64_t workspace = kWorkspaceBytes;
  COHORT_CUBLAS_CHECK(lt.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace, sizeof(workspace)));
  if (out == CUDA_R_16BF || out == CUDA_R_16F) {
    // As the cuBLAS handles' DISALLOW_REDUCED_PRECISION_REDUCTION: split-K partial sums in f32 only.
    const uint32_t schemes = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
    COHORT_CUBLAS_CHECK(lt.pref_set(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &schemes, sizeof(schemes)));
  }
  COHORT_CUBLAS_CHECK(lt.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key.align_a, sizeof(uint32_t)));
  COHORT_CUBLAS_CHECK(lt.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key.align_b, sizeof(uint32_t)));
  COHORT_CUBLAS_CHECK(lt.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key.align_c, sizeof(uint32_t)));
  COHORT_CUBLAS_CHECK(lt.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key.align_c, sizeof(uint32_t)));
  cublasLtMatmulHeuristicResult_t result{};
  int count = 0;
  const cublasStatus_t status = lt.heuristic(handle, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, 1, &result, &count);
  lt.pref_destroy(pref);
  plan.ok = status == CUBLAS_STATUS_SUCCESS && count > 0 && result.state == CUBLAS_STATUS_SUCCESS;
  plan.algo = result.algo;
  return plan;
}

// The product of p (one matrix, no batch) plus `bias` through cuBLASLt; false when cuBLASLt is not
// there or has no algorithm for it (the caller then adds the bias the plain way).
// A cuBLASLt call that fails turns the epilogue off for the rest of the process, with a warning:
// the products go on the plain way, which is slower but right.
std::atomic<bool> g_lt_failed{false};

bool run_with_bias_epilogue(const Product& p, const void* bias) {
  const CublasLtApi* lt = cublaslt();
  if (lt == nullptr || p.batch != 1 || g_lt_failed.load(std::memory_order_relaxed)) return false;
  BlasOperand ob, oa;
  if (!read_transposed(p.k, p.n, p.b.rs, p.b.cs, ob) || !read_transposed(p.m, p.k, p.a.rs, p.a.cs, oa)) return false;
  const cublasComputeType_t compute =
      p.in_dtype == DType::f32 && tf32_allowed() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  // As in run(): cuBLAS's A is b^T (m = out's columns), B is a^T.
  const LtKey key{p.device,
                  to_int(p.n, "the output's column count"),
                  to_int(p.m, "the output's row count"),
                  to_int(p.k, "the inner dim"),
                  to_int(ob.ld, "a leading dim"),
                  to_int(oa.ld, "a leading dim"),
                  to_int(p.ldc, "the output's leading dim"),
                  static_cast<int>(ob.op),
                  static_cast<int>(oa.op),
                  static_cast<int>(blas_type(p.in_dtype)),
                  static_cast<int>(blas_type(p.out_dtype)),
                  static_cast<int>(compute),
                  alignment(p.b.data),
                  alignment(p.a.data),
                  alignment(p.c)};
  cublasLtHandle_t handle = lt_handle(*lt, p.device);
  thread_local std::unordered_map<LtKey, LtPlan, LtKeyHash> plans;
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, make_lt_plan(*lt, handle, key)).first;
  const LtPlan& plan = it->second;
  if (!plan.ok) return false;
  COHORT_CUBLAS_CHECK(lt->desc_set(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  cublas_handle(p.device, p.stream);  // makes sure this thread has its workspace for the stream
  void* workspace = nullptr;
  for (const StreamWorkspace& w : thread_handle(p.device).workspaces) {
    if (w.stream == p.stream) workspace = w.buffer.raw_data();
  }
  const float alpha = 1.0f, beta = 0.0f;
  const cublasStatus_t status =
      lt->matmul(handle, plan.desc, &alpha, p.b.data, plan.a, p.a.data, plan.b, &beta, p.c, plan.c, p.c, plan.c,
                 &plan.algo, workspace, workspace != nullptr ? kWorkspaceBytes : 0, p.stream);
  if (status != CUBLAS_STATUS_SUCCESS) {
    if (!g_lt_failed.exchange(true)) {
      std::fprintf(stderr,
                   "cohort: cuBLASLt's matmul with a bias epilogue failed with %s for (%d x %d) = (%d x %d) @ "
                   "(%d x %d); products with a bias go on without it (slower). Please report this.\n",
                   cublas().status_name(status), key.m, key.n, key.m, key.k, key.k, key.n);
    }
    return false;
  }
  return true;
}

// The batch dims of out (and of a and b, which have its batch sizes) after dropping size-1 dims
// and merging neighbours whose strides allow it in all three.
struct BatchDims {
  std::vector<int64_t> sizes;
  std::vector<std::array<int64_t, 3>> strides;  // a, b, out
};

BatchDims collapse_batch(const Tensor& a, const Tensor& b, const Tensor& out) {
  BatchDims l;
  for (int64_t d = 0; d < out.dim() - 2; ++d) {
    const int64_t size = out.size(d);
    if (size == 1) continue;
    const std::array<int64_t, 3> s{a.stride(d), b.stride(d), out.stride(d)};
    bool merge = !l.sizes.empty();
    for (size_t q = 0; q < 3 && merge; ++q) merge = l.strides.back()[q] == s[q] * size;
    if (merge) {
      l.sizes.back() *= size;
      l.strides.back() = s;
    } else {
      l.sizes.push_back(size);
      l.strides.push_back(s);
    }
  }
  return l;
}

const char* bytes(const Tensor& t) { return static_cast<const char*>(t.raw_data()); }

}  // namespace

bool blas_layout_ok(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride) {
  BlasOperand o;
  return read_transposed(rows, cols, row_stride, col_stride, o);
}

void matmul(const Tensor& out_in, const Tensor& a_in, const Tensor& b_in, const Tensor& bias) {
  check_same_cuda_device("matmul", out_in.device(), {&a_in, &b_in, &bias});
  const int64_t nd = out_in.dim();
  COHORT_CHECK(nd >= 2 && a_in.dim() == nd && b_in.dim() == nd && a_in.dtype() == b_in.dtype(), ValueError,
               "matmul on CUDA: internal: operands ", a_in.shape_str(), ", ", b_in.shape_str(), " and output ",
               out_in.shape_str(), " must have the same number of dims and a and b one dtype");
  const int64_t m = out_in.size(-2), n = out_in.size(-1), k = a_in.size(-1);
  if (out_in.numel() == 0) return;
  DeviceGuard guard(out_in.device().index);

  Tensor out = out_in, a = a_in, b = b_in;
  int64_t ldc = 0;
  bool transposed = false;
  if (!writable_row_major(m, n, out.stride(-2), out.stride(-1), ldc)) {
    if (writable_row_major(n, m, out.stride(-1), out.stride(-2), ldc)) {
      transposed = true;
      // A column-major output: compute out^T = b^T a^T, which is row-major.
      out = out.transpose(-1, -2);
      a = b_in.transpose(-1, -2);
      b = a_in.transpose(-1, -2);
    } else {  // e.g. a stride-0 (expanded) output: compute into a dense one and copy
      Tensor dense = Tensor::empty(out_in.shape(), TensorOptions(out_in.dtype()).with_device(out_in.device()));
      matmul(dense, a_in, b_in, bias);
      copy(out_in, dense);
      return;
    }
  }
  if (k == 0) {  // an empty sum
    if (bias.defined()) {
      copy(out_in, bias.expand(out_in.shape()));
    } else {
      fill(out_in, 0.0);
    }
    return;
  }
  if (!takes(a)) a = a.contiguous();
  if (!takes(b)) b = b.contiguous();
  const int64_t rows = out.size(-2), cols = out.size(-1), depth = a.size(-1);

  BatchDims l = collapse_batch(a, b, out);
  // x @ W: when b is shared by the whole batch and the batch continues a's and out's rows, the
  // batch folds into the rows and the product is one (B*m, k) @ (k, n) call.
  Product p;
  p.m = rows;
  p.a = {bytes(a), 0, a.stride(-2), a.stride(-1)};
  p.c_batch_stride = 0;
  p.ldc = ldc;
  if (l.sizes.size() == 1 && l.strides[0][1] == 0) {
    const int64_t batch = l.sizes[0], a_bs = l.strides[0][0], out_bs = l.strides[0][2];
    const int64_t a_rs = rows == 1 ? a_bs : a.stride(-2), out_rs = rows == 1 ? out_bs : out.stride(-2);
    int64_t folded_ldc = 0;
    if (a_bs == rows * a_rs && out_bs == rows * out_rs && a.stride(-1) == 1 &&
        blas_layout_ok(rows * batch, depth, a_rs, 1) &&
        writable_row_major(rows * batch, cols, out_rs, out.stride(-1), folded_ldc)) {
      p.m = rows * batch;
      p.a.rs = a_rs;
      p.ldc = folded_ldc;
      l = BatchDims{};
    }
  }
  p.n = cols;
  p.k = depth;
  p.b = {bytes(b), 0, b.stride(-2), b.stride(-1)};
  p.c = out.raw_data();
  p.in_dtype = a.dtype();
  p.out_dtype = out.dtype();
  p.device = out.device().index;
  p.stream = stream_of(out);
  COHORT_CHECK(p.out_dtype == p.in_dtype || (p.out_dtype == DType::f32 && (p.in_dtype == DType::bf16 ||
                                                                           p.in_dtype == DType::f16)),
               DTypeError, "matmul on CUDA: internal: a ", dtype_name(p.in_dtype), " product cannot write ",
               dtype_name(p.out_dtype));
  // A bias along out's rows, of out's dtype and dense, in one (possibly folded) product: cuBLASLt's
  // epilogue. Otherwise the bias goes into the output first and the product is accumulated onto it
  // (beta = 1).
  if (bias.defined() && !transposed && l.sizes.empty() && bias.dim() == 1 && bias.size(0) == n &&
      (bias.stride(0) == 1 || n == 1) && bias.dtype() == out.dtype() && p.in_dtype != DType::f64 &&
      alignment(bias.raw_data()) >= 16 && run_with_bias_epilogue(p, bias.raw_data())) {
    return;
  }
  if (bias.defined()) copy(out_in, bias.expand(out_in.shape()));
  p.accumulate = bias.defined();

  // cuBLAS's batch is the largest batch dim; the others are looped over here.
  const int64_t dims = static_cast<int64_t>(l.sizes.size());
  int64_t inner = -1;
  for (int64_t d = 0; d < dims; ++d) {
    if (inner < 0 || l.sizes[d] > l.sizes[inner]) inner = d;
  }
  if (inner >= 0) {
    p.batch = l.sizes[inner];
    p.a.batch_stride = l.strides[inner][0];
    p.b.batch_stride = l.strides[inner][1];
    p.c_batch_stride = l.strides[inner][2];
  }
  int64_t outer = 1;
  for (int64_t d = 0; d < dims; ++d) outer *= d == inner ? 1 : l.sizes[d];
  const size_t in_size = a.element_size(), out_size = out.element_size();
  for (int64_t o = 0; o < outer; ++o) {
    std::array<int64_t, 3> off{0, 0, 0};
    for (int64_t d = dims - 1, rem = o; d >= 0; --d) {
      if (d == inner) continue;
      const int64_t i = rem % l.sizes[d];
      rem /= l.sizes[d];
      for (size_t q = 0; q < 3; ++q) off[q] += i * l.strides[d][q];
    }
    Product call = p;
    call.a.data = bytes(a) + off[0] * static_cast<int64_t>(in_size);
    call.b.data = bytes(b) + off[1] * static_cast<int64_t>(in_size);
    call.c = static_cast<char*>(out.raw_data()) + off[2] * static_cast<int64_t>(out_size);
    run(call);
  }
}

}  // namespace cuda

}  // namespace cohort::detail
