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
// Handles. cuBLAS handles are expensive to create (~ms) and not safe to share between threads that
// run concurrently, so each thread keeps one per device, made on first use and handed to the next
// thread through a pool when it exits. A handle is bound to the stream of the call (re-bound only
// when the stream changes) together with a 32 MiB workspace owned by that stream (cuBLAS's
// recommendation for Hopper; two streams must never share one): a tensor from the caching
// allocator, so it is stream-ordered like any other.
#include <algorithm>
#include <array>
#include <climits>
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

}  // namespace

cublasHandle_t cublas_handle(int device, cudaStream_t stream) {
  // On thread exit the handle goes back to the pool, its workspaces to the allocator: the next
  // owner re-binds stream and workspace before its first call.
  thread_local ThreadSlots<DeviceHandle> th;
  DeviceHandle& h = th.at(device);
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
  if (!writable_row_major(m, n, out.stride(-2), out.stride(-1), ldc)) {
    if (writable_row_major(n, m, out.stride(-1), out.stride(-2), ldc)) {
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
  // The bias goes into the output first and the product is accumulated onto it (beta = 1).
  if (bias.defined()) copy(out_in, bias.expand(out_in.shape()));
  if (k == 0) {  // an empty sum
    if (!bias.defined()) fill(out_in, 0.0);
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
  p.accumulate = bias.defined();
  p.device = out.device().index;
  p.stream = stream_of(out);
  COHORT_CHECK(p.out_dtype == p.in_dtype || (p.out_dtype == DType::f32 && (p.in_dtype == DType::bf16 ||
                                                                           p.in_dtype == DType::f16)),
               DTypeError, "matmul on CUDA: internal: a ", dtype_name(p.in_dtype), " product cannot write ",
               dtype_name(p.out_dtype));

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
