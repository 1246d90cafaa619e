// cohort's own GEMM: cache-blocked, packed, OpenMP-parallel, for f32 and f64 with any strides.
// Used for f64 always and for everything when cohort is built without oneDNN.
#include <algorithm>
#include <vector>

#include "cohort/core/parallel_for.h"
#include "gemm-impl.h"

namespace cohort::detail {

namespace {

// The register tile: kMR rows of A times kNR columns of B, kept in vector registers (12 of them
// with AVX2: 4 rows x 3 registers). The compiler vectorises the j loop; the kernel is compiled
// twice on x86-64, for AVX2+FMA and for the baseline, and the loader picks one for the CPU.
// (With GCC 12, 4x24 stays in registers; 4x16 and 6x16 tiles were spilled and ran 10x slower.)
constexpr int kMR = 4;
template <class T>
constexpr int kNR = 96 / static_cast<int>(sizeof(T));

// Cache blocks: a packed kMC x kKC block of A stays in L2, a kKC x kNR sliver of B in L1.
constexpr int64_t kMC = 120;  // a multiple of kMR
constexpr int64_t kKC = 256;
constexpr int64_t kNC = 480;  // a multiple of kNR

// Below this many multiply-adds the product runs on one thread.
constexpr int64_t kParallelFlops = 1 << 18;

template <class T>
inline __attribute__((always_inline)) void micro_kernel_body(int64_t kc, const T* ap, const T* bp, T* acc) {
  constexpr int NR = kNR<T>;
  T c[kMR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const T* a = ap + p * kMR;
    const T* b = bp + p * NR;
    for (int i = 0; i < kMR; ++i) {
      const T av = a[i];
      for (int j = 0; j < NR; ++j) c[i][j] += av * b[j];
    }
  }
  for (int i = 0; i < kMR; ++i)
    for (int j = 0; j < NR; ++j) acc[i * NR + j] = c[i][j];
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define COHORT_GEMM_CLONES __attribute__((target_clones("arch=x86-64-v3", "default"), optimize("fp-contract=fast")))
#else
#define COHORT_GEMM_CLONES
#endif

COHORT_GEMM_CLONES void micro_kernel(int64_t kc, const float* ap, const float* bp, float* acc) {
  micro_kernel_body(kc, ap, bp, acc);
}
COHORT_GEMM_CLONES void micro_kernel(int64_t kc, const double* ap, const double* bp, double* acc) {
  micro_kernel_body(kc, ap, bp, acc);
}

// Packs rows [m0, m0+mc) x depth [k0, k0+kc) of A into kMR-row panels, each laid out depth-major
// (panel[p * kMR + i]), zero-padding the last panel.
template <class T>
void pack_a(const MatrixRef<const T>& a, const T* base, int64_t m0, int64_t mc, int64_t k0, int64_t kc, T* out) {
  for (int64_t ip = 0; ip < mc; ip += kMR) {
    const int64_t rows = std::min<int64_t>(kMR, mc - ip);
    T* panel = out + ip * kc;
    for (int64_t p = 0; p < kc; ++p) {
      const T* col = base + (m0 + ip) * a.row_stride + (k0 + p) * a.col_stride;
      int i = 0;
      for (; i < rows; ++i) panel[p * kMR + i] = col[i * a.row_stride];
      for (; i < kMR; ++i) panel[p * kMR + i] = T(0);
    }
  }
}

// Packs depth [k0, k0+kc) x columns [n0, n0+nc) of B into kNR-column panels (panel[p * kNR + j]).
template <class T>
void pack_b(const MatrixRef<const T>& b, const T* base, int64_t k0, int64_t kc, int64_t n0, int64_t nc, T* out) {
  constexpr int NR = kNR<T>;
  for (int64_t jp = 0; jp < nc; jp += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - jp);
    T* panel = out + jp * kc;
    for (int64_t p = 0; p < kc; ++p) {
      const T* row = base + (k0 + p) * b.row_stride + (n0 + jp) * b.col_stride;
      int j = 0;
      if (b.col_stride == 1) {
        for (; j < cols; ++j) panel[p * NR + j] = row[j];
      } else {
        for (; j < cols; ++j) panel[p * NR + j] = row[j * b.col_stride];
      }
      for (; j < NR; ++j) panel[p * NR + j] = T(0);
    }
  }
}

// One (batch, M block, N block) tile of C. The depth is walked in kKC blocks in order, and each
// element sums its kKC products in order inside the micro-kernel, so the result does not depend
// on how tiles are spread over threads.
template <class T>
void gemm_tile(const Gemm<T>& g, int64_t bi, int64_t m0, int64_t mc, int64_t n0, int64_t nc) {
  constexpr int NR = kNR<T>;
  thread_local std::vector<T> a_pack, b_pack;
  a_pack.resize(static_cast<size_t>((kMC + kMR) * kKC));
  b_pack.resize(static_cast<size_t>((kNC + NR) * kKC));
  const T* a_base = g.a.data + bi * g.a.batch_stride;
  const T* b_base = g.b.data + bi * g.b.batch_stride;
  T* c_base = g.c.data + bi * g.c.batch_stride;
  T acc[kMR * NR];
  for (int64_t k0 = 0; k0 < g.k; k0 += kKC) {
    const int64_t kc = std::min(kKC, g.k - k0);
    pack_a(g.a, a_base, m0, mc, k0, kc, a_pack.data());
    pack_b(g.b, b_base, k0, kc, n0, nc, b_pack.data());
    const bool overwrite = k0 == 0 && !g.accumulate;
    for (int64_t jp = 0; jp < nc; jp += NR) {
      const int64_t cols = std::min<int64_t>(NR, nc - jp);
      for (int64_t ip = 0; ip < mc; ip += kMR) {
        const int64_t rows = std::min<int64_t>(kMR, mc - ip);
        micro_kernel(kc, a_pack.data() + ip * kc, b_pack.data() + jp * kc, acc);
        for (int64_t i = 0; i < rows; ++i) {
          T* c_row = c_base + (m0 + ip + i) * g.c.row_stride + (n0 + jp) * g.c.col_stride;
          for (int64_t j = 0; j < cols; ++j) {
            T& out = c_row[j * g.c.col_stride];
            out = overwrite ? acc[i * NR + j] : out + acc[i * NR + j];
          }
        }
      }
    }
  }
}

template <class T>
void gemm_impl(const Gemm<T>& g) {
  if (g.batch == 0 || g.m == 0 || g.n == 0) return;
  // Depth 0: the product is zero, so c is the bias (or unchanged when accumulating).
  const bool fill_only = g.k == 0;
  const int64_t n_blocks = (g.n + kNC - 1) / kNC;
  // With few N blocks, cut M finer so every thread gets a tile.
  int64_t mc = kMC;
  const int64_t threads = get_num_threads();
  if (g.batch * n_blocks < threads) {
    const int64_t want = (threads + g.batch * n_blocks - 1) / (g.batch * n_blocks);
    mc = std::min(kMC, std::max<int64_t>(kMR, ((g.m + want - 1) / want + kMR - 1) / kMR * kMR));
  }
  const int64_t m_blocks = (g.m + mc - 1) / mc;
  const int64_t tiles = g.batch * m_blocks * n_blocks;
  const bool small = g.batch * g.m * g.n * std::max<int64_t>(g.k, 1) < kParallelFlops;
  parallel_for(0, tiles, small ? tiles + 1 : 1, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t bi = t / (m_blocks * n_blocks);
      const int64_t mb = (t / n_blocks) % m_blocks;
      const int64_t nb = t % n_blocks;
      const int64_t m0 = mb * mc, n0 = nb * kNC;
      const int64_t mrows = std::min(mc, g.m - m0), ncols = std::min(kNC, g.n - n0);
      if (!fill_only) gemm_tile(g, bi, m0, mrows, n0, ncols);
      if (g.bias == nullptr && !fill_only) continue;
      // The bias goes on after the product (or alone when the depth is 0).
      T* c_base = g.c.data + bi * g.c.batch_stride;
      for (int64_t i = m0; i < m0 + mrows; ++i) {
        for (int64_t j = n0; j < n0 + ncols; ++j) {
          T& out = c_base[i * g.c.row_stride + j * g.c.col_stride];
          const T bias = g.bias ? g.bias[j] : T(0);
          out = fill_only && !g.accumulate ? bias : out + bias;
        }
      }
    }
  });
}

}  // namespace

void gemm_fallback(const Gemm<float>& g) { gemm_impl(g); }
void gemm_fallback(const Gemm<double>& g) { gemm_impl(g); }

}  // namespace cohort::detail
