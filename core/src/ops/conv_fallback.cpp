// conv2d's kernels without oneDNN: im2col + gemm (f32 and f64; f64 takes this path always).
//
// im2col lays one image's receptive fields out as a matrix col (C_in*kH*kW, Ho*Wo), row
// r = (c, i, j) holding x[c, oh*s - p + i*d, ow*s - p + j*d] (0 in the padding) for every output
// position (oh, ow). Then, per group g with its C_in/groups channels (a contiguous block of rows),
//   forward:          y[n, g]  (OCg, Ho*Wo)     = W[g] (OCg, Kg) @ col[g] (Kg, Ho*Wo)
//   backward data:    dcol[g]  (Kg, Ho*Wo)      = W[g]^T @ dy[n, g], then col2im sums dcol into dx
//   backward weights: dW[g]    (OCg, Kg)       += dy[n, g] @ col[g]^T, over the images in order
// with Kg = (C_in/groups)*kH*kW. Images are independent in the first two, so they run in parallel;
// the weight gradient sums over images in a fixed order so it does not depend on the thread count.
#include <algorithm>
#include <vector>

#include "cohort/core/parallel_for.h"
#include "conv-impl.h"
#include "gemm-impl.h"

namespace cohort::detail {

namespace {

constexpr int64_t kRowGrain = 16;  // im2col rows per parallel chunk

template <class T>
void im2col(const ConvGeometry& g, const T* x, T* col) {  // x (C_in, H, W) -> col (C_in*kH*kW, Ho*Wo)
  const int64_t taps = g.kh * g.kw, plane = g.ho * g.wo;
  parallel_for(0, g.c_in * taps, kRowGrain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t c = r / taps, i = (r / g.kw) % g.kh, j = r % g.kw;
      const T* xc = x + c * g.h * g.w;
      T* out = col + r * plane;
      for (int64_t oh = 0; oh < g.ho; ++oh) {
        const int64_t ih = oh * g.stride - g.padding + i * g.dilation;
        T* row = out + oh * g.wo;
        if (ih < 0 || ih >= g.h) {
          std::fill(row, row + g.wo, T(0));
          continue;
        }
        for (int64_t ow = 0; ow < g.wo; ++ow) {
          const int64_t iw = ow * g.stride - g.padding + j * g.dilation;
          row[ow] = (iw >= 0 && iw < g.w) ? xc[ih * g.w + iw] : T(0);
        }
      }
    }
  });
}

// The adjoint of im2col: dx (C_in, H, W) = sum of col's entries at the positions they came from.
template <class T>
void col2im(const ConvGeometry& g, const T* col, T* dx) {
  const int64_t taps = g.kh * g.kw, plane = g.ho * g.wo;
  // One channel per task: a channel's rows only touch that channel, so no two tasks collide.
  parallel_for(0, g.c_in, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      T* xc = dx + c * g.h * g.w;
      std::fill(xc, xc + g.h * g.w, T(0));
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t i = t / g.kw, j = t % g.kw;
        const T* in = col + (c * taps + t) * plane;
        for (int64_t oh = 0; oh < g.ho; ++oh) {
          const int64_t ih = oh * g.stride - g.padding + i * g.dilation;
          if (ih < 0 || ih >= g.h) continue;
          for (int64_t ow = 0; ow < g.wo; ++ow) {
            const int64_t iw = ow * g.stride - g.padding + j * g.dilation;
            if (iw >= 0 && iw < g.w) xc[ih * g.w + iw] += in[oh * g.wo + ow];
          }
        }
      }
    }
  });
}

// Sizes of one group's pieces.
struct GroupDims {
  int64_t ocg, kg, plane;
};
GroupDims group_dims(const ConvGeometry& g) {
  return {g.c_out / g.groups, (g.c_in / g.groups) * g.kh * g.kw, g.ho * g.wo};
}

template <class T>
MatrixRef<const T> rows_of(const T* p, int64_t cols) {
  return {p, 0, cols, 1};
}
template <class T>
MatrixRef<const T> transposed(const T* p, int64_t cols) {
  return {p, 0, 1, cols};
}  // of a (rows, cols) matrix

}  // namespace

template <class T>
void conv_forward_fallback(const ConvGeometry& g, const T* x, const T* weight, const T* bias, T* y) {
  const GroupDims d = group_dims(g);
  parallel_for(0, g.n, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> col(static_cast<size_t>(g.c_in * g.kh * g.kw * d.plane));
    for (int64_t n = begin; n < end; ++n) {
      im2col(g, x + n * g.c_in * g.h * g.w, col.data());
      T* yn = y + n * g.c_out * d.plane;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        Gemm<T> p;
        p.m = d.ocg, p.n = d.plane, p.k = d.kg;
        p.a = rows_of(weight + grp * d.ocg * d.kg, d.kg);
        p.b = rows_of<T>(col.data() + grp * d.kg * d.plane, d.plane);
        p.c = {yn + grp * d.ocg * d.plane, 0, d.plane, 1};
        gemm_fallback(p);
      }
      if (bias == nullptr) continue;
      for (int64_t oc = 0; oc < g.c_out; ++oc)
        for (int64_t q = 0; q < d.plane; ++q) yn[oc * d.plane + q] += bias[oc];
    }
  });
}

template <class T>
void conv_backward_data_fallback(const ConvGeometry& g, const T* dy, const T* weight, T* dx) {
  const GroupDims d = group_dims(g);
  parallel_for(0, g.n, 1, [&](int64_t begin, int64_t end) {
    std::vector<T> col(static_cast<size_t>(g.c_in * g.kh * g.kw * d.plane));
    for (int64_t n = begin; n < end; ++n) {
      const T* dyn = dy + n * g.c_out * d.plane;
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        Gemm<T> p;
        p.m = d.kg, p.n = d.plane, p.k = d.ocg;
        p.a = transposed(weight + grp * d.ocg * d.kg, d.kg);
        p.b = rows_of(dyn + grp * d.ocg * d.plane, d.plane);
        p.c = {col.data() + grp * d.kg * d.plane, 0, d.plane, 1};
        gemm_fallback(p);
      }
      col2im(g, col.data(), dx + n * g.c_in * g.h * g.w);
    }
  });
}

template <class T>
void conv_backward_weights_fallback(const ConvGeometry& g, const T* x, const T* dy, T* dweight, T* dbias) {
  const GroupDims d = group_dims(g);
  std::vector<T> col(static_cast<size_t>(g.c_in * g.kh * g.kw * d.plane));
  for (int64_t n = 0; n < g.n; ++n) {
    im2col(g, x + n * g.c_in * g.h * g.w, col.data());
    const T* dyn = dy + n * g.c_out * d.plane;
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      Gemm<T> p;
      p.m = d.ocg, p.n = d.kg, p.k = d.plane;
      p.a = rows_of(dyn + grp * d.ocg * d.plane, d.plane);
      p.b = transposed<T>(col.data() + grp * d.kg * d.plane, d.plane);
      p.c = {dweight + grp * d.ocg * d.kg, 0, d.kg, 1};
      p.accumulate = n > 0;
      gemm_fallback(p);
    }
  }
  if (g.n == 0) std::fill(dweight, dweight + g.c_out * d.kg, T(0));
  if (dbias == nullptr) return;
  parallel_for(0, g.c_out, 1, [&](int64_t begin, int64_t end) {
    for (int64_t oc = begin; oc < end; ++oc) {
      double total = 0;  // a long sum: accumulate in double even for f32
      for (int64_t n = 0; n < g.n; ++n) {
        const T* plane = dy + (n * g.c_out + oc) * d.plane;
        for (int64_t q = 0; q < d.plane; ++q) total += plane[q];
      }
      dbias[oc] = static_cast<T>(total);
    }
  });
}

template void conv_forward_fallback<float>(const ConvGeometry&, const float*, const float*, const float*, float*);
template void conv_forward_fallback<double>(const ConvGeometry&, const double*, const double*, const double*, double*);
template void conv_backward_data_fallback<float>(const ConvGeometry&, const float*, const float*, float*);
template void conv_backward_data_fallback<double>(const ConvGeometry&, const double*, const double*, double*);
template void conv_backward_weights_fallback<float>(const ConvGeometry&, const float*, const float*, float*, float*);
template void conv_backward_weights_fallback<double>(const ConvGeometry&, const double*, const double*, double*,
                                                     double*);

}  // namespace cohort::detail
