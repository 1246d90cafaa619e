// Elementwise ops beyond add/sub/mul/div: unary, pow, maximum/minimum, comparisons and selection.
// Forward values on small known inputs, gradients on hand-checkable cases, and bad-input errors.
// (Finite-difference gradchecks and PyTorch parity live elsewhere.)
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cohort/core/core.h"

using namespace cohort;

namespace {

std::vector<double> values(const Tensor& t) {
  Tensor c = t.detach().to(DType::f64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

Tensor bools(std::initializer_list<double> v, Shape shape = {}) {
  return tensor(v, std::move(shape)).to(DType::boolean);
}

// Runs f, expecting it to throw E with a message containing every one of `parts`.
template <class E, class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    FAIL() << "expected an exception";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing '" << p << "' in: " << msg;
  }
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

// ---- unary ----

TEST(Unary, ReluForwardKeepsNaNAndBackwardMasks) {
  Tensor x = tensor({-2, 0, 3, kNaN}).requires_grad_();
  Tensor y = relu(x);
  std::vector<double> v = values(y);
  EXPECT_EQ(v[0], 0.0);
  EXPECT_EQ(v[1], 0.0);
  EXPECT_EQ(v[2], 3.0);
  EXPECT_TRUE(std::isnan(v[3]));
  (y * tensor({1, 2, 3, 4})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 3, 4}));  // NaN passes, like PyTorch
}

TEST(Unary, ReluAbsSquareAcceptIntegers) {
  Tensor x = from_vector<int32_t>({-3, 0, 4});
  EXPECT_EQ(relu(x).dtype(), DType::i32);
  EXPECT_EQ(values(relu(x)), (std::vector<double>{0, 0, 4}));
  EXPECT_EQ(values(abs(x)), (std::vector<double>{3, 0, 4}));
  Tensor y = square(from_vector<int64_t>({-3, 5}));
  EXPECT_EQ(y.dtype(), DType::i64);
  EXPECT_EQ(values(y), (std::vector<double>{9, 25}));
}

TEST(Unary, GeluExactAndTanhValuesAndGradients) {
  // Reference values from the formulas in double: Phi(1) = 0.841345, phi(1) = 0.241971.
  Tensor x = tensor({-1, 0, 1}, {}, DType::f64).requires_grad_();
  Tensor y = gelu(x);
  std::vector<double> v = values(y);
  EXPECT_NEAR(v[0], -0.15865525393145707, 1e-12);
  EXPECT_NEAR(v[1], 0.0, 1e-12);
  EXPECT_NEAR(v[2], 0.8413447460685429, 1e-12);
  y.sum().backward();
  std::vector<double> g = values(x.grad());
  EXPECT_NEAR(g[0], 0.15865525393145707 - 0.24197072451914337, 1e-12);
  EXPECT_NEAR(g[1], 0.5, 1e-12);
  EXPECT_NEAR(g[2], 0.8413447460685429 + 0.24197072451914337, 1e-12);

  Tensor xt = tensor({-1, 1}, {}, DType::f64).requires_grad_();
  Tensor yt = gelu(xt, "tanh");
  EXPECT_NEAR(values(yt)[0], -0.15880800939172324, 1e-12);
  EXPECT_NEAR(values(yt)[1], 0.8411919906082768, 1e-12);
  yt.sum().backward();
  EXPECT_NEAR(values(xt.grad())[0], -0.08296408384578255, 1e-12);
  EXPECT_NEAR(values(xt.grad())[1], 1.0829640838457826, 1e-12);
}

TEST(Unary, GeluRejectsUnknownApproximation) {
  expect_error<ValueError>([] { gelu(ones({2}), "erf"); }, {"gelu", "\"none\"", "\"tanh\"", "\"erf\""});
}

TEST(Unary, TranscendentalValuesAndGradients) {
  struct Case {
    const char* name;
    Tensor (*fn)(const Tensor&);
    double x, y, dy;  // f(x) and f'(x)
  };
  const Case cases[] = {
      {"tanh", cohort::tanh, 0.5, std::tanh(0.5), 1 - std::tanh(0.5) * std::tanh(0.5)},
      {"sigmoid", cohort::sigmoid, 0.0, 0.5, 0.25},
      {"exp", cohort::exp, 1.0, std::exp(1.0), std::exp(1.0)},
      {"log", cohort::log, 2.0, std::log(2.0), 0.5},
      {"sqrt", cohort::sqrt, 4.0, 2.0, 0.25},
      {"abs", cohort::abs, -1.5, 1.5, -1.0},
      {"square", cohort::square, -3.0, 9.0, -6.0},
  };
  for (const Case& c : cases) {
    Tensor x = tensor({c.x}).requires_grad_();
    Tensor y = c.fn(x);
    EXPECT_EQ(y.dtype(), DType::f32) << c.name;
    EXPECT_NEAR(y.item(), c.y, 1e-6) << c.name;  // f32 rounding
    y.sum().backward();
    EXPECT_NEAR(x.grad().item(), c.dy, 1e-6) << c.name;
  }
}

TEST(Unary, FloatKernelsMatchDoubleLibmOverARange) {
  // f32 exp/tanh/sigmoid/gelu use cohort's own vectorisable approximations; compare them with the
  // f64 path (libm) on a grid. Tolerance: 4 f32 ulps relative (5e-7), plus 1e-6 absolute for gelu,
  // whose erf is accurate to 4.5e-7 absolute.
  std::vector<double> grid;
  for (double v = -20.0; v <= 20.0; v += 0.01953125) grid.push_back(v);  // exact in f32
  Tensor x32 = from_vector(grid).to(DType::f32);
  Tensor x64 = from_vector(grid);
  struct Case {
    const char* name;
    Tensor (*fn)(const Tensor&);
    double abs_tol;
  };
  const Case cases[] = {{"exp", cohort::exp, 0.0}, {"tanh", cohort::tanh, 0.0},
                        {"sigmoid", cohort::sigmoid, 0.0}, {"gelu", [](const Tensor& t) { return gelu(t); }, 1e-6}};
  for (const Case& c : cases) {
    std::vector<double> got = values(c.fn(x32)), want = values(c.fn(x64));
    for (size_t i = 0; i < grid.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 5e-7 * std::fabs(want[i]) + c.abs_tol) << c.name << " at x = " << grid[i];
  }
  std::vector<double> e = values(cohort::exp(tensor({kInf, -kInf, kNaN, 88.0, -100.0})));
  EXPECT_EQ(e[0], kInf);
  EXPECT_EQ(e[1], 0.0);
  EXPECT_TRUE(std::isnan(e[2]));
  EXPECT_NEAR(e[3], std::exp(88.0), 1e-6 * std::exp(88.0));
  EXPECT_NEAR(e[4], std::exp(-100.0), 1e-45);  // a subnormal result
  EXPECT_EQ(values(cohort::tanh(tensor({kInf, -kInf}))), (std::vector<double>{1, -1}));
  EXPECT_TRUE(std::isnan(values(gelu(tensor({kNaN, 1})))[0]));
}

TEST(Unary, SigmoidSaturatesWithoutNaN) {
  std::vector<double> v = values(sigmoid(tensor({-1000, 1000})));
  EXPECT_EQ(v[0], 0.0);
  EXPECT_EQ(v[1], 1.0);
}

TEST(Unary, AbsGradientIsZeroAtZero) {
  Tensor x = tensor({-2, 0, 2}).requires_grad_();
  abs(x).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{-1, 0, 1}));
}

TEST(Unary, HalfTypesComputeInFloatAndKeepTheirDtype) {
  for (DType dt : {DType::bf16, DType::f16}) {
    Tensor x = tensor({0.0, 1.0, 2.0}).to(dt).requires_grad_();
    Tensor y = exp(x);
    EXPECT_EQ(y.dtype(), dt);
    std::vector<double> v = values(y);
    EXPECT_NEAR(v[1], std::exp(1.0), 0.02);  // bf16 has 8 bits of mantissa: relative error < 2^-8
    EXPECT_NEAR(v[2], std::exp(2.0), 0.05);
    y.sum().backward();
    EXPECT_EQ(x.grad().dtype(), dt);
    EXPECT_NEAR(values(x.grad())[2], std::exp(2.0), 0.05);
    EXPECT_NEAR(values(gelu(x))[1], 0.8413447, 0.005);
  }
}

TEST(Unary, NonContiguousInputs) {
  Tensor x = tensor({-1, 2, -3, 4, -5, 6}, {2, 3}).t();  // (3, 2), strides (1, 3)
  ASSERT_FALSE(x.is_contiguous());
  Tensor y = relu(x);
  EXPECT_TRUE(y.is_contiguous());
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(values(y), (std::vector<double>{0, 4, 2, 0, 0, 6}));
  EXPECT_EQ(values(square(x)), (std::vector<double>{1, 16, 4, 25, 9, 36}));
}

TEST(Unary, FloatingOnlyOpsRejectIntegers) {
  Tensor xi = from_vector<int32_t>({1, 2});
  expect_error<DTypeError>([&] { exp(xi); }, {"exp", "i32"});
  expect_error<DTypeError>([&] { gelu(xi); }, {"gelu", "i32"});
  expect_error<DTypeError>([&] { sigmoid(xi.to(DType::boolean)); }, {"sigmoid", "bool"});
  expect_error<DTypeError>([&] { relu(xi.to(DType::boolean)); }, {"relu", "bool"});
}

// ---- pow, maximum, minimum ----

TEST(Pow, TensorExponentBroadcastsAndDifferentiatesBothSides) {
  Tensor a = tensor({2, 3}, {2, 1}).requires_grad_();   // (2, 1)
  Tensor b = tensor({0, 1, 2}, {3}).requires_grad_();   // (3)
  Tensor y = pow(a, b);                                  // (2, 3)
  EXPECT_EQ(y.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(y), (std::vector<double>{1, 2, 4, 1, 3, 9}));
  y.sum().backward();
  // d/da = sum_j b_j a^(b_j - 1) = 0 + 1 + 2a; d/db_j = sum_i a_i^b_j log(a_i).
  EXPECT_NEAR(values(a.grad())[0], 5.0, 1e-5);
  EXPECT_NEAR(values(a.grad())[1], 7.0, 1e-5);
  std::vector<double> gb = values(b.grad());
  EXPECT_NEAR(gb[0], std::log(2.0) + std::log(3.0), 1e-5);
  EXPECT_NEAR(gb[2], 4 * std::log(2.0) + 9 * std::log(3.0), 1e-4);
}

TEST(Pow, ZeroBaseHasFiniteGradients) {
  Tensor a = tensor({0, 0}).requires_grad_();
  Tensor b = tensor({0, 2}).requires_grad_();
  pow(a, b).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 0}));  // 0 where b == 0, else b * 0^(b-1)
  EXPECT_EQ(values(b.grad()), (std::vector<double>{0, 0}));  // 0 where a == 0 and b >= 0
}

TEST(Pow, ScalarExponent) {
  Tensor x = tensor({-2, 3}).requires_grad_();
  Tensor y = pow(x, 2.0);
  EXPECT_EQ(values(y), (std::vector<double>{4, 9}));
  y.sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{-4, 6}));

  Tensor z = tensor({4, 9}).requires_grad_();
  Tensor r = pow(z, 0.5);
  EXPECT_NEAR(values(r)[1], 3.0, 1e-6);
  r.sum().backward();
  EXPECT_NEAR(values(z.grad())[0], 0.25, 1e-6);  // 0.5 * 4^-0.5
}

TEST(Pow, IntegerTensors) {
  Tensor x = from_vector<int64_t>({2, -3});
  EXPECT_EQ(pow(x, 3.0).dtype(), DType::i64);
  EXPECT_EQ(values(pow(x, 3.0)), (std::vector<double>{8, -27}));
  EXPECT_EQ(pow(x, 0.5).dtype(), DType::f32);
  EXPECT_EQ(values(pow(x, from_vector<int64_t>({10, 2}))), (std::vector<double>{1024, 9}));
  expect_error<ValueError>([&] { pow(x, -1.0); }, {"pow", "negative", "i64"});
}

TEST(Pow, MixedDtypesPromote) {
  Tensor y = pow(from_vector<int32_t>({2, 3}), tensor({2.0, 0.5}));
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_NEAR(values(y)[1], std::sqrt(3.0), 1e-6);
}

TEST(Maximum, ForwardPropagatesNaNAndBroadcasts) {
  Tensor a = tensor({1, 5, kNaN, 2}, {2, 2});
  Tensor b = tensor({3, 1}, {2});
  std::vector<double> mx = values(maximum(a, b));
  std::vector<double> mn = values(minimum(a, b));
  EXPECT_EQ(mx[0], 3);
  EXPECT_EQ(mx[1], 5);
  EXPECT_TRUE(std::isnan(mx[2]));
  EXPECT_EQ(mx[3], 2);
  EXPECT_EQ(mn[0], 1);
  EXPECT_EQ(mn[1], 1);
  EXPECT_TRUE(std::isnan(mn[2]));
  EXPECT_EQ(mn[3], 1);
}

TEST(Maximum, GradientGoesToTheWinnerAndSplitsTies) {
  Tensor a = tensor({1, 5, 2}).requires_grad_();
  Tensor b = tensor({3, 1, 2}).requires_grad_();
  maximum(a, b).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{0, 1, 0.5}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{1, 0, 0.5}));

  Tensor c = tensor({1, 5, 2}).requires_grad_();
  Tensor d = tensor({2}).requires_grad_();  // broadcast: its gradient is summed
  minimum(c, d).sum().backward();
  EXPECT_EQ(values(c.grad()), (std::vector<double>{1, 0, 0.5}));
  EXPECT_EQ(values(d.grad()), (std::vector<double>{1.5}));
}

TEST(Maximum, MixedDtypesPromote) {
  Tensor y = maximum(from_vector<int32_t>({1, 7}), tensor({2.5, 3}));
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(values(y), (std::vector<double>{2.5, 7}));
  Tensor z = minimum(tensor({1, 2}).to(DType::bf16), tensor({1.5, 1.5}).to(DType::f16));
  EXPECT_EQ(z.dtype(), DType::f32);  // bf16 with f16 promotes to f32
  EXPECT_EQ(values(z), (std::vector<double>{1, 1.5}));
}

TEST(Maximum, ShapeErrorNamesOpAndShapes) {
  expect_error<ShapeError>([] { maximum(zeros({2, 3}), zeros({4})); }, {"maximum", "(2, 3)", "(4"});
  expect_error<ShapeError>([] { pow(zeros({2, 3}), zeros({2})); }, {"pow", "(2, 3)", "(2"});
}

// ---- comparisons ----

TEST(Compare, TensorTensorWithBroadcastAndPromotion) {
  Tensor a = from_vector<int32_t>({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({2.0, 3.5});  // f32 (2): compared in f32
  EXPECT_EQ(lt(a, b).dtype(), DType::boolean);
  EXPECT_EQ(values(lt(a, b)), (std::vector<double>{1, 1, 0, 0}));
  EXPECT_EQ(values(le(a, b)), (std::vector<double>{1, 1, 0, 0}));
  EXPECT_EQ(values(eq(a, b)), (std::vector<double>{0, 0, 0, 0}));
  EXPECT_EQ(values(eq(a, tensor({1.0, 2.0}))), (std::vector<double>{1, 1, 0, 0}));
  EXPECT_EQ(values(ne(a, tensor({1.0, 2.0}))), (std::vector<double>{0, 0, 1, 1}));
  EXPECT_EQ(values(gt(a, b)), (std::vector<double>{0, 0, 1, 1}));
  EXPECT_EQ(values(ge(a, tensor({3.0}))), (std::vector<double>{0, 0, 1, 1}));
}

TEST(Compare, TensorScalar) {
  Tensor x = from_vector<int64_t>({0, 1, 2});
  EXPECT_EQ(values(gt(x, 0.5)), (std::vector<double>{0, 1, 1}));  // compared in f32, not truncated to 0
  EXPECT_EQ(values(le(x, 1.0)), (std::vector<double>{1, 1, 0}));
  EXPECT_EQ(values(eq(tensor({1, kNaN}), 1.0)), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(ne(tensor({kNaN}), kNaN)), (std::vector<double>{1}));
  EXPECT_EQ(values(lt(tensor({-kInf, 0}), 0.0)), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(ge(tensor({1, 2}).to(DType::bf16), 2.0)), (std::vector<double>{0, 1}));
}

TEST(Compare, NonContiguousAndNoGradient) {
  Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor m = gt(x.t(), 2.0);  // (3, 2): [[1,4],[2,5],[3,6]]
  EXPECT_EQ(values(m), (std::vector<double>{0, 1, 0, 1, 1, 1}));
  EXPECT_FALSE(m.requires_grad());
}

TEST(Compare, LogicalNot) {
  EXPECT_EQ(values(logical_not(bools({1, 0, 1}))), (std::vector<double>{0, 1, 0}));
  Tensor r = logical_not(tensor({0.0, 2.5, -1.0}));
  EXPECT_EQ(r.dtype(), DType::boolean);
  EXPECT_EQ(values(r), (std::vector<double>{1, 0, 0}));
  EXPECT_EQ(values(logical_not(from_vector<int32_t>({0, 3}))), (std::vector<double>{1, 0}));
}

TEST(Compare, ShapeErrorNamesOpAndShapes) {
  expect_error<ShapeError>([] { ge(zeros({3}), zeros({2, 2})); }, {"ge", "(3", "(2, 2)"});
}

// ---- where, masked_fill, clamp ----

TEST(Where, ForwardBroadcastsAndPromotes) {
  Tensor c = bools({1, 0, 0, 1}, {2, 2});
  Tensor a = from_vector<int32_t>({1, 2});    // (2)
  Tensor b = tensor({-1.5});                  // (1)
  Tensor y = where(c, a, b);
  EXPECT_EQ(y.dtype(), DType::f32);
  EXPECT_EQ(y.shape(), (Shape{2, 2}));
  EXPECT_EQ(values(y), (std::vector<double>{1, -1.5, -1.5, 2}));
}

TEST(Where, GradientsAreMaskedAndSummedToInputShapes) {
  Tensor c = bools({1, 0, 0, 1, 1, 1}, {2, 3});
  Tensor a = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor b = tensor({0}, {1}).requires_grad_();
  (where(c, a, b) * tensor({1, 2, 3, 4, 5, 6}, {2, 3})).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 0, 0, 4, 5, 6}));
  EXPECT_EQ(b.grad().shape(), (Shape{1}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{5}));  // 2 + 3
}

TEST(Where, CondMustBeBool) {
  expect_error<DTypeError>([] { where(ones({2}), ones({2}), zeros({2})); }, {"where", "cond", "bool", "f32"});
  expect_error<ShapeError>([] { where(bools({1, 0, 1}), ones({2}), zeros({2})); }, {"where", "(3", "(2"});
}

TEST(MaskedFill, ForwardAndGradient) {
  Tensor x = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor mask = bools({0, 1, 0});  // broadcast over rows
  Tensor y = masked_fill(x, mask, -kInf);
  std::vector<double> v = values(y);
  EXPECT_EQ(v[0], 1);
  EXPECT_EQ(v[1], -kInf);
  EXPECT_EQ(v[4], -kInf);
  EXPECT_EQ(v[5], 6);
  (y * 0.0 + masked_fill(x, mask, 0.0)).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 0, 1, 1, 0, 1}));
  EXPECT_EQ(values(masked_fill(from_vector<int64_t>({5, 6}), bools({1, 0}), 7.0)), (std::vector<double>{7, 6}));
}

TEST(MaskedFill, MaskMustBeBoolAndBroadcastToTheInput) {
  expect_error<DTypeError>([] { masked_fill(ones({2}), ones({2}), 0.0); }, {"masked_fill", "mask", "f32"});
  // (2, 3) would broadcast with (3), but the result must keep the input's shape (3).
  expect_error<ShapeError>([] { masked_fill(ones({3}), bools({1, 0, 1, 0, 1, 0}, {2, 3}), 0.0); },
                           {"masked_fill", "(2, 3)", "(3"});
}

TEST(Clamp, ForwardAndGradientAtBoundaries) {
  Tensor x = tensor({-2, -1, 0, 1, 2, kNaN}).requires_grad_();
  Tensor y = clamp(x, -1.0, 1.0);
  std::vector<double> v = values(y);
  EXPECT_EQ(std::vector<double>(v.begin(), v.begin() + 5), (std::vector<double>{-1, -1, 0, 1, 1}));
  EXPECT_TRUE(std::isnan(v[5]));
  y.sum().backward();
  // Passes where min <= x <= max, boundaries included (PyTorch's convention); NaN gets 0.
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 1, 1, 0, 0}));
}

TEST(Clamp, OneSidedAndIntegers) {
  EXPECT_EQ(values(clamp(tensor({-3, 3}), 0.0)), (std::vector<double>{0, 3}));
  EXPECT_EQ(values(clamp(tensor({-3, 3}), -kInf, 0.0)), (std::vector<double>{-3, 0}));
  Tensor xi = from_vector<int32_t>({-5, 0, 5});
  Tensor yi = clamp(xi, -1.0, 1e12);  // a bound past i32's range saturates
  EXPECT_EQ(yi.dtype(), DType::i32);
  EXPECT_EQ(values(yi), (std::vector<double>{-1, 0, 5}));
  Tensor yf = clamp(xi, 0.5);
  EXPECT_EQ(yf.dtype(), DType::f32);
  EXPECT_EQ(values(yf), (std::vector<double>{0.5, 0.5, 5}));
}

TEST(Clamp, MinAboveMaxIsAnError) {
  expect_error<ValueError>([] { clamp(ones({2}), 2.0, 1.0); }, {"clamp", "min 2", "max 1"});
  expect_error<DTypeError>([] { clamp(bools({1}), 0.0, 1.0); }, {"clamp", "bool"});
}
