// scaled_dot_product_attention: softmax(q k^T * scale, causally masked) v and its gradient, as one
// op.
//
// Written as separate ops (matmul, mul, masked_fill, softmax, matmul), attention makes five passes
// over the (L, S) scores per batch entry, two of them batched products of tiny matrices (a GPT
// head is 64 x 32), and with a causal mask half of every product is thrown away. Here each batch
// entry (one head of one sequence) is one task:
//   forward:  s = Q K^T (causal: only the column tiles at or left of the diagonal),
//             P = softmax(scale * s) row by row, O = P V (causal: only the keys <= the row)
//   backward: dP = dO V^T, dS = scale * P * (dP - rowsum(P * dP)), dQ = dS K, dK = dS^T Q,
//             dV = P^T dO (all with the same causal bounds)
// P is kept for backward (batch x L x S). The operands of one task are copied into small padded
// scratch matrices (a few KiB), so every product runs in one register-tiled loop (tile_gemm) with
// no edge cases, whatever the strides and dtype of q, k and v. Tasks run in parallel.
//
// On CUDA tensors the same steps run as cuBLAS batched products and two row kernels
// (cuda/attention.cu); P is kept the same way. bf16/f16 with a head size of 32, 64 or 128 take
// fused kernels instead (cuda/flash_attention.cu, cuda::flash_attention()), which keep no P: the
// row log-sum-exp (batch x L) and a copy of the output, from which backward recomputes it. Under
// an AutocastGuard (amp.h), CUDA inputs are cast to the autocast dtype first.
//
// The output and the input gradients are laid out in the memory order of q (resp. k, v): for q a
// (B, H, T, D) view of a (B, T, H * D) projection, the output is a (B, H, T, D) view of a dense
// (B, T, H, D) block, so merging the heads back is a free reshape, as is the reverse in backward.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>
#include <vector>

#include "../amp/autocast-impl.h"
#include "../cuda/blas-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/parallel_for.h"
#include "vec-math-impl.h"

namespace cohort {

namespace {

constexpr int64_t kRows = 4;   // rows of an output tile
constexpr int64_t kCols = 16;  // columns of an output tile: two AVX2 vectors of float

int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// c[i, j] = sum over k in k_range(i0) of a[i, k] * b[k, j], for row tiles i0 = 0, kRows, ... < m
// and column tiles j0 < n_end(i0). a[i, k] is at a[i * a_row + k * a_k] (a transposed operand is
// just other strides: its elements are read one at a time and broadcast); b and c are row-major
// with leading dims ldb and ldc. All are padded so that whole tiles stay inside them. The kRows x kCols accumulators are GCC vectors
// (32 bytes: AVX registers, or SSE pairs), so they stay in registers across the k loop.
template <class A, class KRange, class NEnd>
void tile_gemm(int64_t m, const A* a, int64_t a_row, int64_t a_k, const A* b, int64_t ldb, A* c, int64_t ldc,
               const KRange& k_range, const NEnd& n_end) {
  typedef A Vec __attribute__((vector_size(32)));
  typedef A Unaligned __attribute__((vector_size(32), aligned(sizeof(A))));  // for loads and stores
  constexpr int64_t kLanes = 32 / sizeof(A), kVecs = kCols / kLanes;
  for (int64_t i0 = 0; i0 < m; i0 += kRows) {
    const auto [k0, k1] = k_range(i0);
    const int64_t n1 = n_end(i0);
    const A* ar = a + i0 * a_row;
    for (int64_t j0 = 0; j0 < n1; j0 += kCols) {
      Vec acc[kRows][kVecs] = {};
      for (int64_t k = k0; k < k1; ++k) {
        const Unaligned* bk = reinterpret_cast<const Unaligned*>(b + k * ldb + j0);
        Vec bv[kVecs];
        for (int64_t v = 0; v < kVecs; ++v) bv[v] = bk[v];
        for (int64_t r = 0; r < kRows; ++r) {
          const A av = ar[r * a_row + k * a_k];
          for (int64_t v = 0; v < kVecs; ++v) acc[r][v] += av * bv[v];
        }
      }
      for (int64_t r = 0; r < kRows; ++r) {
        Unaligned* cr = reinterpret_cast<Unaligned*>(c + (i0 + r) * ldc + j0);
        for (int64_t v = 0; v < kVecs; ++v) cr[v] = acc[r][v];
      }
    }
  }
}

struct Range {
  int64_t begin, end;
};

// A strided (rows, cols) matrix of one batch entry.
template <class T>
struct View {
  T* data;
  int64_t row_stride, col_stride;
  T& at(int64_t r, int64_t c) const { return data[r * row_stride + c * col_stride]; }
};

// dst[r * ld + c] = src(r, c): row by row, so a row with unit stride is one vectorised copy.
template <class A, class T>
void load(const View<const T>& src, int64_t rows, int64_t cols, A* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = src.data + r * src.row_stride;
    A* d = dst + r * ld;
    if (src.col_stride == 1) {
      for (int64_t c = 0; c < cols; ++c) d[c] = static_cast<A>(s[c]);
    } else {
      for (int64_t c = 0; c < cols; ++c) d[c] = static_cast<A>(s[c * src.col_stride]);
    }
  }
}

// dst[c * ld_dst + r] = src[r * ld_src + c], within the scratch (L1-resident) matrices. Reads
// run along rows: the other order vectorises into gathers, which are slower on AMD cores.
template <class A>
void transpose(const A* src, int64_t ld_src, int64_t rows, int64_t cols, A* dst, int64_t ld_dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ld_dst + r] = src[r * ld_src + c];
}

// max over n values with independent lanes (a single running max is a serial dependency chain).
template <class A>
A lane_max(const A* x, int64_t n) {
  constexpr int kLanes = 16;
  A part[kLanes];
  for (int k = 0; k < kLanes; ++k) part[k] = -std::numeric_limits<A>::infinity();
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int k = 0; k < kLanes; ++k) part[k] = std::max(part[k], x[i + k]);
  A m = -std::numeric_limits<A>::infinity();
  for (; i < n; ++i) m = std::max(m, x[i]);
  for (int k = 0; k < kLanes; ++k) m = std::max(m, part[k]);
  return m;
}

template <class A, class T>
void store(const A* src, int64_t ld, int64_t rows, int64_t cols, const View<T>& dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst.at(r, c) = T(src[r * ld + c]);
}

struct Dims {
  int64_t batch = 1, L = 0, S = 0, E = 0, Ev = 0;
  bool causal = false;
  double scale = 1.0;
  // Keys query row i attends to: [0, keys(i)).
  int64_t keys(int64_t i) const { return causal ? std::min(i + 1, S) : S; }
  // The same for a tile of kRows rows from i0 (its last row sees the most).
  int64_t tile_keys(int64_t i0) const { return causal ? std::min(i0 + kRows, S) : S; }
  // Query rows that see key j: [queries(j), L).
  int64_t queries(int64_t j) const { return causal ? std::min(j, L) : 0; }
};

// Element offset of batch entry `i` in t, whose leading dims are the batch dims.
int64_t batch_offset(const Tensor& t, int64_t i) {
  int64_t off = 0;
  for (int64_t d = t.dim() - 3; d >= 0; --d) {
    off += (i % t.size(d)) * t.stride(d);
    i /= t.size(d);
  }
  return off;
}

template <class T>
View<T> matrix(const Tensor& t, T* base, int64_t i) {
  return {base + batch_offset(t, i), t.stride(-2), t.stride(-1)};
}

// An empty tensor of `shape` whose dims are laid out in the memory order of `like`'s (same rank):
// the leading dims by decreasing stride, the last dim innermost.
Tensor empty_in_order_of(const Tensor& like, const Shape& shape, DType dtype) {
  const int64_t n = like.dim();
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end() - 1,
                   [&](int64_t a, int64_t b) { return like.stride(a) > like.stride(b); });
  Shape dense(n);
  for (int64_t d = 0; d < n; ++d) dense[d] = shape[order[d]];
  std::vector<int64_t> back(n);
  for (int64_t d = 0; d < n; ++d) back[order[d]] = d;
  return Tensor::empty(dense, TensorOptions(dtype).with_device(like.device())).permute(back);
}

// Per-thread scratch, grown as needed and reused across calls.
template <class A>
struct Scratch {
  std::vector<A> q, k, v, g, s, t, out;
  static Scratch& get() {
    thread_local Scratch s;
    return s;
  }
};

template <class A>
A* sized(std::vector<A>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  return v.data();
}

template <class T>
void forward_kernel(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                    const Tensor& probs) {
  using A = acc_t<T>;
  const T* qb = q.data_ptr<T>();
  const T* kb = k.data_ptr<T>();
  const T* vb = v.data_ptr<T>();
  T* ob = out.data_ptr<T>();
  A* pb = probs.data_ptr<A>();
  const int64_t Lp = round_up(d.L, kRows), Sp = round_up(d.S, kCols), Ep = round_up(d.E, kCols),
                Evp = round_up(d.Ev, kCols);
  parallel_for(0, d.batch, 1, [&](int64_t b0, int64_t b1) {
    Scratch<A>& sc = Scratch<A>::get();
    A* qs = sized(sc.q, Lp * Ep);   // Q, (Lp, Ep)
    A* ks = sized(sc.g, d.S * Ep);  // K, (S, Ep)
    A* kt = sized(sc.k, d.E * Sp);  // K^T, (E, Sp)
    A* vs = sized(sc.v, d.S * Evp); // V, (S, Evp)
    A* s = sized(sc.s, Lp * Sp);    // scores, then P
    A* o = sized(sc.out, Lp * Evp);
    for (int64_t bi = b0; bi < b1; ++bi) {
      load<A, T>(matrix<const T>(q, qb, bi), d.L, d.E, qs, Ep);
      load<A, T>(matrix<const T>(k, kb, bi), d.S, d.E, ks, Ep);
      transpose(ks, Ep, d.S, d.E, kt, Sp);
      load<A, T>(matrix<const T>(v, vb, bi), d.S, d.Ev, vs, Evp);
      tile_gemm(Lp, qs, Ep, 1, kt, Sp, s, Sp, [&](int64_t) { return Range{0, d.E}; },
                [&](int64_t i0) { return round_up(d.tile_keys(i0), kCols); });
      A* p_saved = pb + bi * d.L * d.S;
      for (int64_t i = 0; i < d.L; ++i) {
        A* row = s + i * Sp;
        const int64_t n = d.keys(i);
        const A scale = static_cast<A>(d.scale);
        for (int64_t j = 0; j < n; ++j) row[j] *= scale;
        const A mx = lane_max(row, n);
        for (int64_t j = 0; j < n; ++j) row[j] = detail::vec_exp(row[j] - mx);
        const A sum = detail::lane_sum<A>(n, [row](int64_t j) { return row[j]; });
        const A inv = A(1) / sum;
        for (int64_t j = 0; j < n; ++j) row[j] *= inv;
        for (int64_t j = n; j < Sp; ++j) row[j] = A(0);
        std::copy(row, row + d.S, p_saved + i * d.S);
      }
      tile_gemm(Lp, s, Sp, 1, vs, Evp, o, Evp, [&](int64_t i0) { return Range{0, d.tile_keys(i0)}; },
                [&](int64_t) { return Evp; });
      store<A, T>(o, Evp, d.L, d.Ev, matrix<T>(out, ob, bi));
    }
  });
}

template <class T>
void backward_kernel(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& probs,
                     const Tensor& g, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  using A = acc_t<T>;
  const T* qb = q.data_ptr<T>();
  const T* kb = k.data_ptr<T>();
  const T* vb = v.data_ptr<T>();
  const T* gb = g.data_ptr<T>();
  const A* pb = probs.data_ptr<A>();
  T* dqb = dq.data_ptr<T>();
  T* dkb = dk.data_ptr<T>();
  T* dvb = dv.data_ptr<T>();
  const int64_t Lp = round_up(d.L, kRows), Sp = round_up(d.S, kCols), Ep = round_up(d.E, kCols),
                Evp = round_up(d.Ev, kCols);
  const A scale = static_cast<A>(d.scale);
  parallel_for(0, d.batch, 1, [&](int64_t b0, int64_t b1) {
    Scratch<A>& sc = Scratch<A>::get();
    A* qs = sized(sc.q, Lp * Ep);      // Q, (Lp, Ep)
    A* ks = sized(sc.k, d.S * Ep);     // K, (S, Ep)
    A* vt = sized(sc.v, d.Ev * Sp);    // V^T, (Ev, Sp)
    A* gs = sized(sc.g, Lp * Evp);     // dO, (Lp, Evp)
    A* ps = sized(sc.t, Lp * Sp);      // P, (Lp, Sp)
    A* ds = sized(sc.s, Lp * Sp);      // dP, then dS
    A* res = sized(sc.out, std::max(Lp, Sp) * std::max(Ep, Evp));
    for (int64_t bi = b0; bi < b1; ++bi) {
      const A* p = pb + bi * d.L * d.S;
      load<A, T>(matrix<const T>(q, qb, bi), d.L, d.E, qs, Ep);
      load<A, T>(matrix<const T>(k, kb, bi), d.S, d.E, ks, Ep);
      load<A, T>(matrix<const T>(v, vb, bi), d.S, d.Ev, res, Evp);
      transpose(res, Evp, d.S, d.Ev, vt, Sp);
      load<A, T>(matrix<const T>(g, gb, bi), d.L, d.Ev, gs, Evp);
      const auto all_keys = [&](int64_t i0) { return Range{0, d.tile_keys(i0)}; };
      const auto seeing_queries = [&](int64_t j0) { return Range{d.queries(j0), d.L}; };

      // dV = P^T dO
      for (int64_t i = 0; i < d.L; ++i) std::copy(p + i * d.S, p + (i + 1) * d.S, ps + i * Sp);
      tile_gemm(Sp, ps, 1, Sp, gs, Evp, res, Evp, seeing_queries, [&](int64_t) { return Evp; });
      store<A, T>(res, Evp, d.S, d.Ev, matrix<T>(dv, dvb, bi));

      // dP = dO V^T, then dS = scale * P * (dP - sum_j P dP) in place
      tile_gemm(Lp, gs, Evp, 1, vt, Sp, ds, Sp, [&](int64_t) { return Range{0, d.Ev}; },
                [&](int64_t i0) { return round_up(d.tile_keys(i0), kCols); });
      for (int64_t i = 0; i < d.L; ++i) {
        A* row = ds + i * Sp;
        const A* prow = ps + i * Sp;
        const int64_t n = d.keys(i);
        const A dot = detail::lane_sum<A>(n, [row, prow](int64_t j) { return row[j] * prow[j]; });
        for (int64_t j = 0; j < n; ++j) row[j] = scale * prow[j] * (row[j] - dot);
        for (int64_t j = n; j < Sp; ++j) row[j] = A(0);
      }

      // dQ = dS K
      tile_gemm(Lp, ds, Sp, 1, ks, Ep, res, Ep, all_keys, [&](int64_t) { return Ep; });
      store<A, T>(res, Ep, d.L, d.E, matrix<T>(dq, dqb, bi));

      // dK = dS^T Q
      tile_gemm(Sp, ds, 1, Sp, qs, Ep, res, Ep, seeing_queries, [&](int64_t) { return Ep; });
      store<A, T>(res, Ep, d.S, d.E, matrix<T>(dk, dkb, bi));
    }
  });
}

// What backward needs of the forward: P (batch x L x S), or for the fused CUDA kernels the row
// log-sum-exp (batch x L, f32) and a copy of the output (a later in-place change of the output
// must not change the gradient).
struct Saved {
  Tensor probs;
  Tensor lse, out;
};

// The forward of one attention over (B..., L, E) views; out is written through its strides.
// `for_backward`: a gradient will be asked for (else the fused path copies no output).
Saved run_forward(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, Tensor out, bool for_backward) {
  Saved saved;
  if (d.batch * d.L * d.S > 0 && detail::cuda::flash_attention_applies(q, k, v)) {
    saved.lse = Tensor::empty({d.batch, d.L}, TensorOptions(DType::f32).with_device(q.device()));
    detail::cuda::flash_attention_forward(q, k, v, out, saved.lse, d.causal, d.scale);
    if (for_backward) saved.out = out.clone();
    return saved;
  }
  Tensor& probs = saved.probs;
  dispatch_floating(q.dtype(), "scaled_dot_product_attention", [&](auto tag) {
    using T = decltype(tag);
    probs = Tensor::empty({d.batch, d.L, d.S}, TensorOptions(dtype_of<acc_t<T>>()).with_device(q.device()));
    if (q.is_cuda() && d.batch * d.L * d.S > 0) {  // P also when Ev == 0, as backward reads it
      detail::cuda::attention_forward(q, k, v, out, probs, d.causal, d.scale);
      return;
    }
    if (out.numel() == 0) return;
    if (d.S == 0) {  // nothing to attend to: an empty sum
      out.zero_();
      return;
    }
    forward_kernel<T>(d, q, k, v, out, probs);
  });
  return saved;
}

void run_backward(const Dims& d, const Tensor& q, const Tensor& k, const Tensor& v, const Saved& saved,
                  const Tensor& g, Tensor dq, Tensor dk, Tensor dv) {
  if (d.batch * d.L * d.S == 0) {
    dq.zero_();
    dk.zero_();
    dv.zero_();
    return;
  }
  const Tensor& probs = saved.probs;
  if (saved.lse.defined()) {
    detail::cuda::flash_attention_backward(q, k, v, saved.out, saved.lse, g, dq, dk, dv, d.causal, d.scale);
    return;
  }
  if (q.is_cuda()) {
    detail::cuda::attention_backward(q, k, v, probs, g, dq, dk, dv, d.causal, d.scale);
    return;
  }
  dispatch_floating(q.dtype(), "scaled_dot_product_attention backward",
                    [&](auto tag) { backward_kernel<decltype(tag)>(d, q, k, v, probs, g, dq, dk, dv); });
}

double default_scale(std::optional<double> scale, int64_t E) {
  return scale ? *scale : 1.0 / std::sqrt(static_cast<double>(std::max<int64_t>(E, 1)));
}

}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool is_causal,
                                    std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  COHORT_CHECK(q.defined() && k.defined() && v.defined(), ValueError, op, ": q, k and v must all be defined");
  COHORT_CHECK(q.device() == k.device() && q.device() == v.device(), DeviceError, op,
               ": q, k and v must be on one device, got q on ", q.device().str(), ", k on ", k.device().str(),
               ", v on ", v.device().str(), "; move them with .to(", q.device().str(), ")");
  if (const auto dt = detail::autocast_dtype_for({q, k, v})) {
    return scaled_dot_product_attention(detail::autocast_cast(q, *dt), detail::autocast_cast(k, *dt),
                                        detail::autocast_cast(v, *dt), is_causal, scale);
  }
  COHORT_CHECK(q.dim() >= 2 && q.dim() == k.dim() && q.dim() == v.dim(), ShapeError, op,
               ": expected q (..., L, E), k (..., S, E) and v (..., S, Ev) with the same number of dims (at "
               "least 2), got q ", q.shape_str(), ", k ", k.shape_str(), ", v ", v.shape_str());
  const int64_t n = q.dim();
  for (int64_t d = 0; d < n - 2; ++d) {
    COHORT_CHECK(q.size(d) == k.size(d) && q.size(d) == v.size(d), ShapeError, op,
                 ": q, k and v must have the same batch dims (all but the last two; no broadcasting), got q ",
                 q.shape_str(), ", k ", k.shape_str(), ", v ", v.shape_str());
  }
  COHORT_CHECK(k.size(-1) == q.size(-1) && v.size(-2) == k.size(-2), ShapeError, op,
               ": expected q (..., L, E), k (..., S, E), v (..., S, Ev): q and k must share E and k and v "
               "share S, got q ",
               q.shape_str(), ", k ", k.shape_str(), ", v ", v.shape_str());
  COHORT_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), DTypeError, op,
               ": q, k and v must have the same dtype, got ", dtype_name(q.dtype()), ", ", dtype_name(k.dtype()),
               ", ", dtype_name(v.dtype()));
  Dims d;
  for (int64_t i = 0; i < n - 2; ++i) d.batch *= q.size(i);
  d.L = q.size(-2);
  d.S = k.size(-2);
  d.E = q.size(-1);
  d.Ev = v.size(-1);
  d.causal = is_causal;
  d.scale = default_scale(scale, d.E);

  Shape out_shape = q.shape();
  out_shape.back() = d.Ev;
  const Tensor qd = q.detach(), kd = k.detach(), vd = v.detach();
  dispatch_floating(q.dtype(), op, [](auto) {});  // the dtype check, before allocating
  Tensor out = empty_in_order_of(qd, out_shape, q.dtype());
  Saved saved = run_forward(d, qd, kd, vd, out, any_requires_grad({q, k, v}));
  return record(out, op, {q, k, v}, [d, qd, kd, vd, saved](const Tensor& g_in, const GradNeeds& needs) {
    Tensor dq = empty_in_order_of(qd, qd.shape(), qd.dtype());
    Tensor dk = empty_in_order_of(kd, kd.shape(), kd.dtype());
    Tensor dv = empty_in_order_of(vd, vd.shape(), vd.dtype());
    run_backward(d, qd, kd, vd, saved, g_in.to(qd.dtype()), dq, dk, dv);
    return grads(needs[0] ? dq : Tensor(), needs[1] ? dk : Tensor(), needs[2] ? dv : Tensor());
  });
}

Tensor self_attention(const Tensor& qkv, int64_t n_heads, bool is_causal, std::optional<double> scale) {
  const char* op = "self_attention";
  COHORT_CHECK(qkv.defined(), ValueError, op, ": the qkv tensor is undefined");
  COHORT_CHECK(n_heads > 0, ValueError, op, ": n_heads must be > 0, got ", n_heads);
  if (const auto dt = detail::autocast_dtype_for({qkv})) {
    return self_attention(detail::autocast_cast(qkv, *dt), n_heads, is_causal, scale);
  }
  COHORT_CHECK(qkv.dim() == 3 && qkv.size(2) % (3 * n_heads) == 0, ShapeError, op,
               ": expected qkv (B, T, 3 * C) with C divisible by n_heads = ", n_heads,
               " (q, k and v side by side, as a Linear(C, 3 * C) makes them), got ", qkv.shape_str());
  const int64_t B = qkv.size(0), T = qkv.size(1), C = qkv.size(2) / 3, H = n_heads, D = C / H;
  dispatch_floating(qkv.dtype(), op, [](auto) {});
  const Tensor x = qkv.detach().contiguous();
  // (B, H, T, D) views of the three thirds of a (B, T, 3, H, D) tensor.
  auto heads = [B, T, H, D](const Tensor& t, int64_t part) {
    return t.view({B, T, 3, H, D}).select(2, part).permute({0, 2, 1, 3});
  };
  Dims d;
  d.batch = B * H;
  d.L = d.S = T;
  d.E = d.Ev = D;
  d.causal = is_causal;
  d.scale = default_scale(scale, D);
  Tensor out = Tensor::empty({B, T, C}, TensorOptions(qkv.dtype()).with_device(qkv.device()));
  const Tensor out_heads = out.view({B, T, H, D}).permute({0, 2, 1, 3});
  Saved saved = run_forward(d, heads(x, 0), heads(x, 1), heads(x, 2), out_heads, any_requires_grad({qkv}));
  return record(out, op, {qkv}, [d, x, saved, heads](const Tensor& g_in, const GradNeeds&) {
    const Tensor g = g_in.to(x.dtype());
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2) / 3, H = d.batch / B, D = C / H;
    const Tensor g_heads = g.reshape({B, T, H, D}).permute({0, 2, 1, 3});
    Tensor dx = Tensor::empty(x.shape(), TensorOptions(x.dtype()).with_device(x.device()));
    run_backward(d, heads(x, 0), heads(x, 1), heads(x, 2), saved, g_heads, heads(dx, 0), heads(dx, 1),
                 heads(dx, 2));
    return grads(dx);
  });
}

}  // namespace cohort
