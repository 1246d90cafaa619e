// Pooling on direct loops (max pooling always: oneDNN has only a slow reference kernel for plain
// NCHW; average pooling without oneDNN), one (n, c) plane per task (planes are independent, so
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

// One candidate of a max window. The first maximum wins and a NaN counts as the maximum (PyTorch's
// rule), so the index moves to v when v is larger or the first NaN; the value is a plain running
// max, replaced by the NaN afterwards if one was seen. Written without branches because which
// element wins is data-dependent: on real activations the branchy version mispredicted so often
// that it ran ~4x slower. The comparisons are combined with & and | (no short-circuit) and the
// index is blended with a mask, as compilers turn && and ?: on an int64 into branches.
template <class T>
struct MaxSoFar {
  T value;
  int64_t at;
  int64_t nan_seen;

  MaxSoFar(T v, int64_t i) : value(v), at(i), nan_seen(v != v) {}

  void consider(T v, int64_t i) {
    const int64_t is_nan = v != v;
    const int64_t take = (static_cast<int64_t>(v > value) | is_nan) & (nan_seen ^ 1);
    at ^= (at ^ i) & -take;
    nan_seen |= is_nan;
    value = v > value ? v : value;  // maxss
  }

  T result(const T* plane) const { return nan_seen ? plane[at] : value; }
};

// The common 2x2, stride 2, unpadded case, where every window lies inside the plane.
template <class T>
void max_pool_plane_2x2(const PoolGeometry& g, const T* xp, T* yp, int64_t* ip) {
  for (int64_t oh = 0; oh < g.ho; ++oh) {
    const int64_t top = 2 * oh * g.w;
    const T* r0 = xp + top;
    const T* r1 = r0 + g.w;
    for (int64_t ow = 0; ow < g.wo; ++ow) {
      const int64_t c = 2 * ow;
      MaxSoFar<T> m(r0[c], top + c);
      m.consider(r0[c + 1], top + c + 1);
      m.consider(r1[c], top + g.w + c);
      m.consider(r1[c + 1], top + g.w + c + 1);
      yp[oh * g.wo + ow] = m.result(xp);
      ip[oh * g.wo + ow] = m.at;
    }
  }
}

template <class T>
void max_pool_plane(const PoolGeometry& g, const T* xp, T* yp, int64_t* ip) {
  for (int64_t oh = 0; oh < g.ho; ++oh) {
    const Window wh = window(oh, g.h, g);
    for (int64_t ow = 0; ow < g.wo; ++ow) {
      const Window ww = window(ow, g.w, g);
      MaxSoFar<T> m(-std::numeric_limits<T>::infinity(), wh.begin * g.w + ww.begin);
      for (int64_t ih = wh.begin; ih < wh.end; ++ih) {
        for (int64_t iw = ww.begin; iw < ww.end; ++iw) m.consider(xp[ih * g.w + iw], ih * g.w + iw);
      }
      yp[oh * g.wo + ow] = m.result(xp);
      ip[oh * g.wo + ow] = m.at;
    }
  }
}

}  // namespace

template <class T>
void max_pool_forward_fallback(const PoolGeometry& g, const T* x, T* y, int64_t* indices) {
  const int64_t in_plane = g.h * g.w, out_plane = g.ho * g.wo;
  const bool two_by_two = g.kernel == 2 && g.stride == 2 && g.padding == 0;
  parallel_for(0, g.n * g.c, plane_grain(g), [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      if (two_by_two) {
        max_pool_plane_2x2(g, x + p * in_plane, y + p * out_plane, indices + p * out_plane);
      } else {
        max_pool_plane(g, x + p * in_plane, y + p * out_plane, indices + p * out_plane);
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
