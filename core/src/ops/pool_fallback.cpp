// Pooling without oneDNN: direct loops, one (n, c) plane per task (planes are independent, so
// the results do not depend on the thread count).
#include <algorithm>
#include <cmath>
#include <limits>

#include "cohort/core/parallel_for.h"
#include "pool-impl.h"

namespace cohort::detail {

namespace {

// The window of output position o along one dim, clipped to the input: [begin, end).
struct Window {
  int64_t begin, end, padded_size;
};
Window window(int64_t o, int64_t size, const PoolGeometry& g) {
  const int64_t start = o * g.stride - g.padding;
  const int64_t stop = std::min(start + g.kernel, size + g.padding);
  return {std::max<int64_t>(start, 0), std::min(stop, size), stop - start};
}

int64_t plane_grain(const PoolGeometry& g) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(1, g.ho * g.wo)); }

}  // namespace

template <class T>
void max_pool_forward_fallback(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  parallel_for(0, g.n * g.c, plane_grain(g), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * in_plane;
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        const Window wh = window(oh, g.h, g);
        for (int64_t ow = 0; ow < g.wo; ++ow) {
          const Window ww = window(ow, g.w, g);
          // The first maximum wins, and a NaN counts as the maximum (PyTorch's rule).
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_at = wh.begin * g.w + ww.begin;
          for (int64_t ih = wh.begin; ih < wh.end; ++ih) {
            for (int64_t iw = ww.begin; iw < ww.end; ++iw) {
              const T v = xp[ih * g.w + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                best_at = ih * g.w + iw;
                if (std::isnan(v)) break;
              }
            }
            if (std::isnan(best)) break;
          }
          y[p * out_plane + oh * g.wo + ow] = best;
          indices[p * out_plane + oh * g.wo + ow] = best_at;
        }
      }
    }
  });
}

template <class T>
void max_pool_backward_fallback(const PoolGeometry& g, const T* dy, const int64_t* indices, T* dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  parallel_for(0, g.n * g.c, plane_grain(g), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* dxp = dx + p * in_plane;
      std::fill(dxp, dxp + in_plane, T(0));
      for (int64_t q = 0; q < out_plane; ++q) dxp[indices[p * out_plane + q]] += dy[p * out_plane + q];
    }
  });
}

template <class T>
void avg_pool_forward_fallback(const PoolGeometry& g, const T* x, T* y) {
  const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  parallel_for(0, g.n * g.c, plane_grain(g), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const T* xp = x + p * in_plane;
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        const Window wh = window(oh, g.h, g);
        for (int64_t ow = 0; ow < g.wo; ++ow) {
          const Window ww = window(ow, g.w, g);
          T total = 0;
          for (int64_t ih = wh.begin; ih < wh.end; ++ih)
            for (int64_t iw = ww.begin; iw < ww.end; ++iw) total += xp[ih * g.w + iw];
          const int64_t count =
              g.count_include_pad ? wh.padded_size * ww.padded_size : (wh.end - wh.begin) * (ww.end - ww.begin);
          y[p * out_plane + oh * g.wo + ow] = total / static_cast<T>(count);
        }
      }
    }
  });
}

template <class T>
void avg_pool_backward_fallback(const PoolGeometry& g, const T* dy, T* dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  parallel_for(0, g.n * g.c, plane_grain(g), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      T* dxp = dx + p * in_plane;
      std::fill(dxp, dxp + in_plane, T(0));
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        const Window wh = window(oh, g.h, g);
        for (int64_t ow = 0; ow < g.wo; ++ow) {
          const Window ww = window(ow, g.w, g);
          const int64_t count =
              g.count_include_pad ? wh.padded_size * ww.padded_size : (wh.end - wh.begin) * (ww.end - ww.begin);
          const T share = dy[p * out_plane + oh * g.wo + ow] / static_cast<T>(count);
          for (int64_t ih = wh.begin; ih < wh.end; ++ih)
            for (int64_t iw = ww.begin; iw < ww.end; ++iw) dxp[ih * g.w + iw] += share;
        }
      }
    }
  });
}

template void max_pool_forward_fallback<float>(const PoolGeometry&, const float*, float*, int64_t*);
template void max_pool_forward_fallback<double>(const PoolGeometry&, const double*, double*, int64_t*);
template void max_pool_backward_fallback<float>(const PoolGeometry&, const float*, const int64_t*, float*);
template void max_pool_backward_fallback<double>(const PoolGeometry&, const double*, const int64_t*, double*);
template void avg_pool_forward_fallback<float>(const PoolGeometry&, const float*, float*);
template void avg_pool_forward_fallback<double>(const PoolGeometry&, const double*, double*);
template void avg_pool_backward_fallback<float>(const PoolGeometry&, const float*, float*);
template void avg_pool_backward_fallback<double>(const PoolGeometry&, const double*, double*);

}  // namespace cohort::detail
