// The fused attention kernels (core/src/cuda/flash_attention-kernels.cuh), their own source, run on
// the CPU through cuda_emulation.h and compared with a float64 attention, forward (out, lse) and
// backward (dQ, dK, dV): CI machines have no GPU, and this way every edit of the kernels is tested.
//
// What it checks: the index arithmetic and bounds (tiles that overhang L and S, causal masks,
// L != S), the strided batch layouts (BatchLayout: permuted (B, T, H, D) storage seen as
// (B, H, T, D), padded rows, four batch dims, an expanded gradient), the shared-memory layout
// (fragments aligned and inside the block's buffer, nothing read before it is written: the buffer
// starts as NaN), the synchronisation (threads run one at a time, in order, in reverse or at
// random, so a missing __syncthreads or __syncwarp gives wrong values or a deadlock), the WMMA
// operand layouts (row or column major, leading dimensions), and the arithmetic (online softmax,
// rounding of P and dS to bf16/f16, f32 sums) to a stated tolerance per dtype.
// What it does not check: performance; the hardware's WMMA register layout (the emulation gives
// each lane a share of a fragment, not the GPU's share); memory-model effects beyond barriers (no
// reordering, caches or delayed visibility); register limits of a real launch. tests/gpu (on a
// GPU) checks the kernels through the ops, against the CPU.
//
// One line per case; exits 1 if any case fails. After editing the kernels:
//   ninja cohort_flash_attention_emulated && ctest -R emulation --output-on-failure
#include "cuda_emulation.h"
// The emulation first: the kernels take their CUDA names from it.
#include "cuda/flash_attention-kernels.cuh"

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <random>
#include <vector>

namespace {

using cohort::detail::cuda::BatchLayout;
using cohort::detail::cuda::from_acc;
using cohort::detail::cuda::to_acc;
using cohort::emulation::Schedule;

// Errors relative to the largest reference value of the quantity in the batch entry (lse: absolute).
// P and dS are rounded to T before their products, so the error is a few units of T's rounding.
struct Tolerance {
  double relative;  // out, dQ, dK, dV
  double lse;
};
constexpr Tolerance kBf16Tolerance{2e-2, 1e-4};  // bf16: 8 significant bits (worst seen ~6e-3)
constexpr Tolerance kF16Tolerance{6e-3, 1e-4};   // f16: 11 significant bits (worst seen ~2e-3)

// How the test lays out its (batch..., rows, E) tensors.
enum class Batch { none, bh, four };  // batch dims: (), (B, H), (B, 1, H, 1) with odd strides on the 1s

struct Case {
  bool f16;  // else bf16
  int E;
  int64_t B, H, L, S;
  bool causal;
  bool permuted;  // q, k, v, out, dK: (B, T, H, E) storage seen as (B, H, T, E); dO and dV the other way
  int64_t pad;    // extra elements at the end of each row of q, k, v and dO
  Batch batch;
  bool expanded_grad;  // dO's row stride 0: every row the same
  Schedule schedule;
};

// A (batch..., rows, E) view into a buffer.
struct View {
  std::vector<int64_t> sizes, strides;  // batch dims
  int64_t row_stride = 0;
  size_t storage = 0;  // elements

  int64_t offset(int64_t b) const {
    int64_t off = 0;
    for (int d = static_cast<int>(sizes.size()) - 1; d >= 0; --d) {
      off += (b % sizes[d]) * strides[d];
      b /= sizes[d];
    }
    return off;
  }
  BatchLayout layout() const {
    BatchLayout l;
    l.ndim = static_cast<int>(sizes.size());
    for (int d = 0; d < l.ndim; ++d) {
      l.sizes[d] = sizes[d];
      l.strides[d] = strides[d];
    }
    l.row_stride = row_stride;
    return l;
  }
};

// (B, H, rows, E) over a (B, rows, H, E + pad) buffer when permuted, else a (B, H, rows, E + pad) one.
View make_view(const Case& c, int64_t rows, bool permuted, int64_t pad) {
  View v;
  const int64_t pe = c.E + pad;
  if (permuted) {
    v.strides = {rows * c.H * pe, pe};
    v.row_stride = c.H * pe;
  } else {
    v.strides = {c.H * rows * pe, rows * pe};
    v.row_stride = pe;
  }
  v.sizes = {c.B, c.H};
  v.storage = static_cast<size_t>(c.B * c.H * rows * pe);
  if (c.batch == Batch::none) {
    v.sizes.clear();
    v.strides.clear();
  } else if (c.batch == Batch::four) {
    v.sizes = {c.B, 1, c.H, 1};
    v.strides = {v.strides[0], 12345, v.strides[1], 777};
  }
  return v;
}

struct Errors {
  double out = 0, lse = 0, dq = 0, dk = 0, dv = 0;
};

double max_error(double worst, double got, double want) {
  return std::isnan(got) ? INFINITY : std::max(worst, std::fabs(got - want));
}

// Launches forward, delta and backward as flash_attention.cu does; returns the worst errors over
// the batch entries against a float64 attention on the same (rounded) inputs.
template <class T, int E>
Errors run_case(const Case& c, uint32_t seed) {
  namespace fa = cohort::detail::cuda;
  using cohort::emulation::launch;
  std::mt19937 rng(static_cast<uint32_t>(c.L * 1000 + c.S + E));
  std::normal_distribution<float> normal;
  const int64_t L = c.L, S = c.S, batch = c.B * c.H;
  const View vq = make_view(c, L, c.permuted, c.pad), vk = make_view(c, S, c.permuted, c.pad),
             vv = make_view(c, S, c.permuted, c.pad), vo = make_view(c, L, c.permuted, 0),
             vdk = make_view(c, S, c.permuted, 0), vdv = make_view(c, S, !c.permuted, 0);
  View vg = make_view(c, L, !c.permuted, c.pad);
  if (c.expanded_grad) vg.row_stride = 0;
  auto random_tensor = [&](const View& v) {
    std::vector<T> x(v.storage);
    for (T& e : x) e = from_acc<T>(normal(rng));
    return x;
  };
  const std::vector<T> q = random_tensor(vq), k = random_tensor(vk), v = random_tensor(vv), g = random_tensor(vg);
  std::vector<T> out(vo.storage, from_acc<T>(NAN)), dk(vdk.storage, from_acc<T>(NAN)),
      dv(vdv.storage, from_acc<T>(NAN));
  std::vector<float> lse(batch * L, NAN), delta(batch * L, NAN), dq_acc(batch * L * E, 0.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(E));
  const int64_t q_tiles = (L + fa::kTile - 1) / fa::kTile, k_tiles = (S + fa::kTile - 1) / fa::kTile;
  using G = fa::Smem<E>;
  const auto blocks = [](int64_t n) { return static_cast<unsigned>(n); };

  launch({blocks(batch * q_tiles), fa::kThreads, G::fwd_bytes, c.schedule, seed}, [&] {
    fa::flash_forward_kernel<T, E>(q.data(), k.data(), v.data(), out.data(), lse.data(), vq.layout(), vk.layout(),
                                   vv.layout(), vo.layout(), L, S, q_tiles, c.causal, scale);
  });
  launch({blocks((batch * L + fa::kWarps - 1) / fa::kWarps), fa::kThreads, 0, c.schedule, seed}, [&] {
    fa::flash_delta_kernel<T>(g.data(), out.data(), delta.data(), vg.layout(), vo.layout(), L, E, batch * L);
  });
  launch({blocks(batch * k_tiles), fa::kThreads, G::bwd_bytes, c.schedule, seed}, [&] {
    fa::flash_backward_kernel<T, E>(q.data(), k.data(), v.data(), g.data(), lse.data(), delta.data(), dq_acc.data(),
                                    dk.data(), dv.data(), vq.layout(), vk.layout(), vv.layout(), vg.layout(),
                                    vdk.layout(), vdv.layout(), L, S, k_tiles, c.causal, scale);
  });

  Errors worst;
  for (int64_t b = 0; b < batch; ++b) {
    auto at = [&](const std::vector<T>& x, const View& view, int64_t r, int64_t col) {
      return static_cast<double>(to_acc(x[view.offset(b) + r * view.row_stride + col]));
    };
    // P (L, S) = softmax(scale Q K^T) with the causal mask, dS = scale P (dP - rowsum(dO * O)).
    std::vector<double> P(L * S, 0.0), dS(L * S, 0.0), O(L * E, 0.0);
    for (int64_t i = 0; i < L; ++i) {
      const int64_t n = c.causal ? std::min(i + 1, S) : S;
      double mx = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int e = 0; e < E; ++e) s += at(q, vq, i, e) * at(k, vk, j, e);
        P[i * S + j] = s * scale;
        mx = std::max(mx, P[i * S + j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < n; ++j) sum += (P[i * S + j] = std::exp(P[i * S + j] - mx));
      for (int64_t j = 0; j < n; ++j) P[i * S + j] /= sum;
      worst.lse = max_error(worst.lse, lse[b * L + i], mx + std::log(sum));
      for (int e = 0; e < E; ++e) {
        double o = 0;
        for (int64_t j = 0; j < n; ++j) o += P[i * S + j] * at(v, vv, j, e);
        O[i * E + e] = o;
      }
      std::vector<double> dP(n);
      double dot = 0;
      for (int64_t j = 0; j < n; ++j) {
        for (int e = 0; e < E; ++e) dP[j] += at(g, vg, i, e) * at(v, vv, j, e);
        dot += dP[j] * P[i * S + j];
      }
      for (int64_t j = 0; j < n; ++j) dS[i * S + j] = scale * P[i * S + j] * (dP[j] - dot);
    }
    double e_out = 0, e_dq = 0, e_dk = 0, e_dv = 0, m_out = 1e-3, m_dq = 1e-3, m_dk = 1e-3, m_dv = 1e-3;
    for (int64_t i = 0; i < L; ++i) {
      for (int e = 0; e < E; ++e) {
        double dq = 0;
        for (int64_t j = 0; j < S; ++j) dq += dS[i * S + j] * at(k, vk, j, e);
        // dq_acc is rounded into dq's dtype by the entry point (a copy): so here too.
        e_dq = max_error(e_dq, to_acc(from_acc<T>(dq_acc[(b * L + i) * E + e])), dq);
        m_dq = std::max(m_dq, std::fabs(dq));
        e_out = max_error(e_out, at(out, vo, i, e), O[i * E + e]);
        m_out = std::max(m_out, std::fabs(O[i * E + e]));
      }
    }
    for (int64_t j = 0; j < S; ++j) {
      for (int e = 0; e < E; ++e) {
        double dk_ref = 0, dv_ref = 0;
        for (int64_t i = 0; i < L; ++i) {
          dk_ref += dS[i * S + j] * at(q, vq, i, e);
          dv_ref += P[i * S + j] * at(g, vg, i, e);
        }
        e_dk = max_error(e_dk, at(dk, vdk, j, e), dk_ref);
        m_dk = std::max(m_dk, std::fabs(dk_ref));
        e_dv = max_error(e_dv, at(dv, vdv, j, e), dv_ref);
        m_dv = std::max(m_dv, std::fabs(dv_ref));
      }
    }
    worst.out = std::max(worst.out, e_out / m_out);
    worst.dq = std::max(worst.dq, e_dq / m_dq);
    worst.dk = std::max(worst.dk, e_dk / m_dk);
    worst.dv = std::max(worst.dv, e_dv / m_dv);
  }
  return worst;
}

// `seed`: of the random schedule.
template <class T>
Errors run_typed(const Case& c, uint32_t seed) {
  switch (c.E) {
    case 32: return run_case<T, 32>(c, seed);
    case 64: return run_case<T, 64>(c, seed);
    default: return run_case<T, 128>(c, seed);
  }
}

// A subset of the cases the kernels were reviewed with (that review also ran every case under all
// three schedules), chosen to cover both dtypes, the three head sizes, causal or not, lengths that
// are not multiples of the 64-row tile, L != S both ways, every layout and every schedule, in a
// few seconds of one core (the time of each case is printed: keep the sum small).
const Case kCases[] = {
    // f16  E    B  H  L    S    causal permuted pad batch        dO expanded schedule
    {false, 64, 1, 1, 64, 64, false, false, 0, Batch::bh, false, Schedule::in_order},
    {true, 64, 1, 1, 64, 64, true, false, 0, Batch::bh, false, Schedule::reverse},
    {false, 64, 1, 2, 100, 130, true, true, 0, Batch::bh, false, Schedule::random},
    {true, 64, 1, 2, 100, 130, false, true, 0, Batch::bh, false, Schedule::random},
    {false, 32, 2, 1, 130, 100, false, false, 8, Batch::bh, false, Schedule::random},
    {true, 32, 2, 1, 130, 100, true, false, 8, Batch::bh, false, Schedule::in_order},
    {true, 32, 1, 1, 1, 1, true, false, 0, Batch::none, false, Schedule::reverse},
    {false, 64, 1, 1, 3, 70, false, true, 0, Batch::bh, false, Schedule::random},
    {true, 64, 1, 1, 3, 70, true, true, 0, Batch::bh, false, Schedule::random},
    {false, 128, 1, 1, 150, 190, true, true, 0, Batch::bh, false, Schedule::random},
    {true, 128, 1, 1, 190, 150, false, false, 8, Batch::bh, false, Schedule::random},
    {true, 128, 1, 1, 65, 65, false, false, 16, Batch::bh, false, Schedule::in_order},
    {false, 128, 1, 1, 65, 65, true, false, 16, Batch::bh, false, Schedule::random},
    {true, 64, 2, 3, 96, 96, true, true, 0, Batch::bh, false, Schedule::random},
    {true, 32, 2, 1, 70, 90, false, false, 8, Batch::four, true, Schedule::random},
    {false, 32, 1, 1, 90, 70, true, true, 0, Batch::four, false, Schedule::reverse},
};

}  // namespace

int main() {
  int failures = 0;
  uint32_t seed = 0;
  for (const Case& c : kCases) {
    const auto start = std::chrono::steady_clock::now();
    ++seed;
    const Errors e = c.f16 ? run_typed<__half>(c, seed) : run_typed<__nv_bfloat16>(c, seed);
    const long emulation_errors = cohort::emulation::take_errors();
    const Tolerance tol = c.f16 ? kF16Tolerance : kBf16Tolerance;
    // Written so that a NaN fails.
    const bool ok = emulation_errors == 0 && e.lse <= tol.lse && e.out <= tol.relative && e.dq <= tol.relative &&
                    e.dk <= tol.relative && e.dv <= tol.relative;
    failures += !ok;
    const char* batch = c.batch == Batch::none ? "no batch dims" : c.batch == Batch::four ? "4 batch dims" : "(B,H)";
    std::printf("%s %-4s E%-3d B%" PRId64 " H%" PRId64 " L%-3" PRId64 " S%-3" PRId64 " %-6s %-5s pad%-2" PRId64
                " %-13s %-8s %-8s: out %.1e lse %.1e dq %.1e dk %.1e dv %.1e (tol %.0e, lse %.0e)",
                ok ? "ok  " : "FAIL", c.f16 ? "f16" : "bf16", c.E, c.B, c.H, c.L, c.S, c.causal ? "causal" : "full",
                c.permuted ? "perm" : "dense", c.pad, batch, c.expanded_grad ? "dO expanded" : "",
                cohort::emulation::schedule_name(c.schedule), e.out, e.lse, e.dq, e.dk, e.dv, tol.relative, tol.lse);
    if (emulation_errors != 0) std::printf(", %ld emulation errors", emulation_errors);
    std::printf(", %.2f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fflush(stdout);
  }
  if (failures != 0) {
    std::printf("%d of %zu cases failed\n", failures, sizeof kCases / sizeof kCases[0]);
    return 1;
  }
  std::printf("all %zu cases passed\n", sizeof kCases / sizeof kCases[0]);
  return 0;
}
