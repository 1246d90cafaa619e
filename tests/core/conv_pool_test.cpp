// conv2d, max_pool2d and avg_pool2d (values and gradients) against naive loops written out here
// from the definitions, in double precision.
//
// Tolerances: f32 absolute 1e-3 (sums of at most ~50 products of standard normal values, f32
// rounding ~1e-7 relative per term, plus oneDNN's reordered sums); f64 absolute 1e-10. Pooling
// only picks or averages values, so it is held to 1e-6 (f32) and 1e-12 (f64).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cohort/core/core.h"

using namespace cohort;

namespace {

std::vector<double> values(const Tensor& t) {
  const Tensor c = t.detach().to(DType::f64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

void expect_close(const Tensor& t, const std::vector<double>& ref, double tol, const std::string& what) {
  const std::vector<double> v = values(t);
  ASSERT_EQ(v.size(), ref.size()) << what;
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double err = std::fabs(v[i] - ref[i]);
    if (!(err <= worst)) worst = err, at = i;
  }
  EXPECT_LE(worst, tol) << what << ", element " << at << ": got " << v[at] << ", want " << ref[at];
}

template <class E, class F>
std::string error_of(const F& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no exception)";
}

// ---- naive convolution: y, and given dy, dx / dw / db, straight from the definition ----

struct ConvCase {
  Shape x, w;
  bool bias;
  Conv2dOptions o;
};

struct ConvReference {
  Shape y_shape;
  std::vector<double> y, dx, dw, db;
};

ConvReference naive_conv(const ConvCase& c, const std::vector<double>& x, const std::vector<double>& w,
                         const std::vector<double>& b, const std::vector<double>& dy) {
  const int64_t N = c.x[0], C = c.x[1], H = c.x[2], W = c.x[3];
  const int64_t OC = c.w[0], CG = c.w[1], KH = c.w[2], KW = c.w[3];
  const int64_t s = c.o.stride, p = c.o.padding, d = c.o.dilation, ocg = OC / c.o.groups;
  const int64_t HO = (H + 2 * p - d * (KH - 1) - 1) / s + 1, WO = (W + 2 * p - d * (KW - 1) - 1) / s + 1;
  ConvReference r;
  r.y_shape = {N, OC, HO, WO};
  r.y.assign(N * OC * HO * WO, 0.0);
  r.dx.assign(x.size(), 0.0);
  r.dw.assign(w.size(), 0.0);
  r.db.assign(OC, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc)
      for (int64_t oh = 0; oh < HO; ++oh)
        for (int64_t ow = 0; ow < WO; ++ow) {
          const int64_t yi = ((n * OC + oc) * HO + oh) * WO + ow;
          double acc = c.bias ? b[oc] : 0.0;
          const double g = dy.empty() ? 0.0 : dy[yi];
          r.db[oc] += g;
          for (int64_t ci = 0; ci < CG; ++ci)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * s - p + i * d, iw = ow * s - p + j * d;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                const int64_t ch = (oc / ocg) * CG + ci;
                const int64_t xi = ((n * C + ch) * H + ih) * W + iw, wi = ((oc * CG + ci) * KH + i) * KW + j;
                acc += x[xi] * w[wi];
                r.dx[xi] += w[wi] * g;
                r.dw[wi] += x[xi] * g;
              }
          r.y[yi] = acc;
        }
  return r;
}

const std::vector<ConvCase>& conv_cases() {
  static const std::vector<ConvCase> cases = {
      {{2, 3, 7, 6}, {4, 3, 3, 3}, true, {1, 1, 1, 1}},   // same-size output
      {{2, 4, 9, 8}, {6, 2, 3, 2}, false, {2, 1, 2, 2}},  // groups, stride, dilation, kH != kW
      {{1, 1, 5, 5}, {2, 1, 5, 5}, true, {1, 0, 1, 1}},   // kernel as large as the input
      {{3, 2, 10, 7}, {3, 2, 4, 3}, true, {3, 2, 1, 1}},  // stride leaves rows unused
      {{2, 4, 6, 6}, {4, 1, 3, 3}, true, {1, 1, 1, 4}},   // depthwise
  };
  return cases;
}

std::string case_name(const ConvCase& c, DType dt) {
  return std::string(dtype_name(dt)) + " x" + shape_str(c.x) + " w" + shape_str(c.w) + " stride " +
         std::to_string(c.o.stride) + " pad " + std::to_string(c.o.padding) + " dil " + std::to_string(c.o.dilation) +
         " groups " + std::to_string(c.o.groups);
}

// ---- naive pooling ----

struct PoolReference {
  Shape y_shape;
  std::vector<double> y, dx;
};

PoolReference naive_pool(bool is_max, const Shape& xs, const std::vector<double>& x, Pool2dOptions o,
                         const std::vector<double>& dy) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3];
  const int64_t k = o.kernel_size, s = o.stride == 0 ? k : o.stride, p = o.padding;
  const int64_t HO = (H + 2 * p - k) / s + 1, WO = (W + 2 * p - k) / s + 1;
  PoolReference r;
  r.y_shape = {N, C, HO, WO};
  r.y.assign(N * C * HO * WO, 0.0);
  r.dx.assign(x.size(), 0.0);
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oh = 0; oh < HO; ++oh)
      for (int64_t ow = 0; ow < WO; ++ow) {
        const int64_t yi = (nc * HO + oh) * WO + ow;
        const int64_t h0 = oh * s - p, w0 = ow * s - p;
        double best = -std::numeric_limits<double>::infinity(), total = 0;
        int64_t best_at = -1, inside = 0;
        for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + k, H); ++ih)
          for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + k, W); ++iw) {
            const int64_t xi = (nc * H + ih) * W + iw;
            if (x[xi] > best) best = x[xi], best_at = xi;
            total += x[xi];
            ++inside;
          }
        const double count = o.count_include_pad ? static_cast<double>(k * k) : static_cast<double>(inside);
        r.y[yi] = is_max ? best : total / count;
        if (is_max) {
          r.dx[best_at] += dy[yi];
        } else {
          for (int64_t ih = std::max<int64_t>(h0, 0); ih < std::min(h0 + k, H); ++ih)
            for (int64_t iw = std::max<int64_t>(w0, 0); iw < std::min(w0 + k, W); ++iw)
              r.dx[(nc * H + ih) * W + iw] += dy[yi] / count;
        }
      }
  return r;
}

}  // namespace

TEST(Conv2d, ValuesAndGradientsMatchTheDefinition) {
  Generator gen(21);
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = dt == DType::f64 ? 1e-10 : 1e-3;
    for (const ConvCase& c : conv_cases()) {
      const std::string what = case_name(c, dt);
      Tensor x = randn(c.x, dt, &gen).requires_grad_();
      Tensor w = randn(c.w, dt, &gen).requires_grad_();
      Tensor b = c.bias ? randn({c.w[0]}, dt, &gen).requires_grad_() : Tensor();
      Tensor y = conv2d(x, w, b, c.o);
      const ConvReference shape_only =
          naive_conv(c, values(x), values(w), c.bias ? values(b) : std::vector<double>(), {});
      ASSERT_EQ(y.shape(), shape_only.y_shape) << what;
      Tensor dy = randn(y.shape(), dt, &gen);
      const ConvReference r =
          naive_conv(c, values(x), values(w), c.bias ? values(b) : std::vector<double>(), values(dy));
      expect_close(y, r.y, tol, what + " y");
      y.backward(dy);
      expect_close(x.grad(), r.dx, tol, what + " dx");
      expect_close(w.grad(), r.dw, tol, what + " dw");
      if (c.bias) expect_close(b.grad(), r.db, tol, what + " db");
      EXPECT_EQ(w.grad().dtype(), dt);
    }
  }
}

TEST(Conv2d, NonContiguousInputIsReadThroughItsStrides) {
  Generator gen(22);
  Tensor x_nhwc = randn({2, 5, 6, 3}, {}, &gen);
  Tensor x = x_nhwc.permute({0, 3, 1, 2});  // (2, 3, 5, 6), channels last in memory
  Tensor w = randn({4, 3, 3, 3}, {}, &gen);
  expect_close(conv2d(x, w), values(conv2d(x.contiguous(), w)), 1e-6, "permuted input");
}

TEST(Conv2d, OnlyTheNeededGradientsAreComputed) {
  Generator gen(23);
  Tensor x = randn({1, 2, 5, 5}, {}, &gen);
  Tensor w = randn({3, 2, 3, 3}, {}, &gen).requires_grad_();
  conv2d(x, w).sum().backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(w.grad().shape(), w.shape());
}

TEST(Conv2d, HalfTypesComputeInF32) {
  Generator gen(24);
  Tensor x = randn({1, 2, 6, 6}, {}, &gen).to(DType::bf16), w = randn({3, 2, 3, 3}, {}, &gen).to(DType::bf16);
  Tensor y = conv2d(x, w);
  EXPECT_EQ(y.dtype(), DType::bf16);
  // 18-term sums of bf16-rounded inputs, rounded to bf16 (relative 2^-8) on values of size ~4.
  expect_close(y, values(conv2d(x.to(DType::f32), w.to(DType::f32))), 0.05, "bf16");
}

TEST(Conv2d, Errors) {
  const Tensor x = zeros({2, 4, 8, 8});
  EXPECT_EQ(error_of<ShapeError>([&] {
              conv2d(x, zeros({6, 3, 3, 3}));
            }),
            "conv2d: input of shape (2, 4, 8, 8) has 4 channels but weight of shape (6, 3, 3, 3) with groups 1 "
            "expects 3");
  EXPECT_EQ(error_of<ShapeError>([&] {
              conv2d(zeros({4, 8, 8}), zeros({6, 4, 3, 3}));
            }),
            "conv2d: expected input of shape (N, C_in, H, W), got shape (4, 8, 8)");
  EXPECT_NE(error_of<ShapeError>([&] { conv2d(x, zeros({6, 4, 3})); }).find("got shape (6, 4, 3)"), std::string::npos);
  EXPECT_EQ(error_of<ShapeError>([&] {
              conv2d(x, zeros({6, 4, 11, 3}));
            }),
            "conv2d: kernel 11x3 (dilation 1, spanning 11x3) does not fit in the padded input 8x8 (input shape "
            "(2, 4, 8, 8), padding 0)");
  EXPECT_NO_THROW(conv2d(x, zeros({6, 4, 10, 3}), Tensor(), {1, 1, 1, 1}));  // fits once padded
  EXPECT_NE(error_of<ShapeError>([&] {
              conv2d(x, zeros({6, 4, 3, 3}), Tensor(), {1, 0, 4, 1});
            }).find("spanning 9x9"),
            std::string::npos);
  EXPECT_EQ(error_of<ValueError>([&] {
              conv2d(x, zeros({6, 2, 3, 3}), Tensor(), {1, 0, 1, 3});
            }),
            "conv2d: groups 3 must divide both C_in 4 and C_out 6 (input shape (2, 4, 8, 8), weight shape "
            "(6, 2, 3, 3))");
  EXPECT_NE(error_of<ShapeError>([&] {
              conv2d(x, zeros({6, 4, 3, 3}), zeros({5}));
            }).find("bias of shape (6)"),
            std::string::npos);
  EXPECT_NE(error_of<ValueError>([&] {
              conv2d(x, zeros({6, 4, 3, 3}), Tensor(), {0, 0, 1, 1});
            }).find("stride 0"),
            std::string::npos);
  EXPECT_THROW(conv2d(x, zeros({6, 4, 3, 3}, DType::f64)), DTypeError);
  EXPECT_THROW(conv2d(zeros({1, 1, 3, 3}, DType::i64), zeros({1, 1, 3, 3}, DType::i64)), DTypeError);
}

TEST(Pool2d, ValuesAndGradientsMatchTheDefinition) {
  Generator gen(31);
  const Shape xs = {2, 3, 7, 8};
  // (kernel, stride, padding, count_include_pad); stride 0 means stride = kernel.
  const std::vector<Pool2dOptions> cases = {
      {2, 0, 0, true}, {3, 2, 1, true}, {3, 2, 1, false}, {3, 1, 1, false}, {4, 3, 2, true}};
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = dt == DType::f64 ? 1e-12 : 1e-6;
    for (const Pool2dOptions& o : cases) {
      for (bool is_max : {true, false}) {
        const std::string what = std::string(dtype_name(dt)) + (is_max ? " max" : " avg") + " k" +
                                 std::to_string(o.kernel_size) + " s" + std::to_string(o.stride) + " p" +
                                 std::to_string(o.padding) + (o.count_include_pad ? " incl" : " excl");
        Tensor x = randn(xs, dt, &gen).requires_grad_();
        Tensor y = is_max ? max_pool2d(x, o) : avg_pool2d(x, o);
        Tensor dy = randn(y.shape(), dt, &gen);
        const PoolReference r = naive_pool(is_max, xs, values(x), o, values(dy));
        ASSERT_EQ(y.shape(), r.y_shape) << what;
        expect_close(y, r.y, tol, what + " y");
        y.backward(dy);
        expect_close(x.grad(), r.dx, tol, what + " dx");
      }
    }
  }
}

TEST(Pool2d, MaxPoolWithoutGradIsTheSame) {
  Generator gen(32);
  Tensor x = randn({2, 2, 6, 6}, {}, &gen);
  Tensor with_grad = max_pool2d(x.detach().requires_grad_(), {3, 2, 1});
  expect_close(max_pool2d(x, {3, 2, 1}), values(with_grad), 0.0, "inference vs training");
}

TEST(Pool2d, HalfTypesComputeInF32) {
  Tensor x = arange(32.0).reshape({1, 2, 4, 4}).to(DType::bf16);
  Tensor y = max_pool2d(x, {2});
  EXPECT_EQ(y.dtype(), DType::bf16);
  expect_close(y, {5, 7, 13, 15, 21, 23, 29, 31}, 0.0, "bf16 max");
  expect_close(avg_pool2d(x, {2}), {2.5, 4.5, 10.5, 12.5, 18.5, 20.5, 26.5, 28.5}, 0.0, "bf16 avg");
}

TEST(Pool2d, Errors) {
  EXPECT_EQ(error_of<ShapeError>([] {
              max_pool2d(zeros({3, 4, 4}), {2});
            }),
            "max_pool2d: expected input of shape (N, C, H, W), got shape (3, 4, 4)");
  EXPECT_EQ(error_of<ValueError>([] {
              avg_pool2d(zeros({1, 1, 4, 4}), {3, 1, 2});
            }),
            "avg_pool2d: padding 2 must be at most half of kernel_size 3");
  EXPECT_EQ(error_of<ShapeError>([] {
              max_pool2d(zeros({1, 1, 2, 5}), {3});
            }),
            "max_pool2d: kernel 3x3 does not fit in the padded input 2x5 (input shape (1, 1, 2, 5), padding 0)");
  EXPECT_NE(error_of<ValueError>([] {
              max_pool2d(zeros({1, 1, 4, 4}), {0});
            }).find("kernel_size 0"),
            std::string::npos);
  EXPECT_THROW(avg_pool2d(zeros({1, 1, 4, 4}, DType::i32), {2}), DTypeError);
}
