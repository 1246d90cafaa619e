// max / min (over all elements and along a dim), argmax / argmin: values, first-occurrence indices,
// NaN handling, layouts (inner > 1, transposed), gradients and errors. sum/mean are tested with
// autograd; finite-difference gradchecks and PyTorch parity live elsewhere.
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

}  // namespace

TEST(MaxAll, ValuesAndGradientToTheFirstExtreme) {
  Tensor x = tensor({3, 7, -2, 7, -2}).requires_grad_();
  Tensor m = max(x);
  EXPECT_EQ(m.shape(), Shape{});
  EXPECT_EQ(m.item(), 7.0);
  m.backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 0, 0, 0}));

  Tensor y = tensor({3, 7, -2, 7, -2}).requires_grad_();
  (min(y) * 5.0).backward();
  EXPECT_EQ(min(y).item(), -2.0);
  EXPECT_EQ(values(y.grad()), (std::vector<double>{0, 0, 5, 0, 0}));
}

TEST(MaxAll, NaNIsTheExtremeForBoth) {
  EXPECT_TRUE(std::isnan(max(tensor({1, kNaN, 5})).item()));
  EXPECT_TRUE(std::isnan(min(tensor({1, kNaN, -5})).item()));
}

TEST(MaxAll, IntegerHalfAndNonContiguousInputs) {
  Tensor xi = from_vector<int64_t>({4, -9, 12});
  EXPECT_EQ(max(xi).dtype(), DType::i64);
  EXPECT_EQ(max(xi).item<int64_t>(), 12);
  EXPECT_EQ(min(xi).item<int64_t>(), -9);
  Tensor xb = tensor({0.5, -1.25, 2.0}).to(DType::bf16);
  EXPECT_EQ(max(xb).dtype(), DType::bf16);
  EXPECT_EQ(max(xb).item(), 2.0);
  EXPECT_EQ(min(tensor({1, 6, 2, 5, 3, 4}, {2, 3}).t().narrow(0, 1, 2)).item(), 2.0);
}

TEST(MaxAll, LargeInputFindsTheFirstMaximumAcrossBlocks) {
  // More than one 2^16-element block, with the maximum tied in a late block and an earlier one.
  const int64_t n = 300000;
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 1000);
  v[70000] = 5000;
  v[250000] = 5000;
  Tensor x = from_vector(v).requires_grad_();
  EXPECT_EQ(max(x).item(), 5000.0);
  max(x).backward();
  EXPECT_EQ(x.grad().select(0, 70000).item(), 1.0);
  EXPECT_EQ(x.grad().sum().item(), 1.0);
}

TEST(MaxAll, EmptyInputIsAnError) {
  expect_error<ValueError>([] { max(zeros({0, 3})); }, {"max", "empty", "(0, 3)"});
  expect_error<ValueError>([] { min(zeros({0})); }, {"min", "empty"});
}

TEST(MaxDim, LastDimValuesIndicesAndKeepdim) {
  Tensor x = tensor({1, 9, 9, 4, -1, -3, -3, 0}, {2, 4});
  ValuesIndices r = max(x, 1);
  EXPECT_EQ(r.values.shape(), (Shape{2}));
  EXPECT_EQ(r.indices.dtype(), DType::i64);
  EXPECT_EQ(values(r.values), (std::vector<double>{9, 0}));
  EXPECT_EQ(values(r.indices), (std::vector<double>{1, 3}));  // first of the tied 9s
  ValuesIndices k = min(x, -1, /*keepdim=*/true);
  EXPECT_EQ(k.values.shape(), (Shape{2, 1}));
  EXPECT_EQ(values(k.values), (std::vector<double>{1, -3}));
  EXPECT_EQ(values(k.indices), (std::vector<double>{0, 1}));
}

TEST(MaxDim, MiddleDimOfContiguousInput) {
  // (2, 3, 2): reducing dim 1 walks (outer 2, R 3, inner 2) with no copy.
  Tensor x = tensor({1, 8, 5, 2, 5, 9,   //
                     0, 0, -1, 3, 0, 3},
                    {2, 3, 2});
  ValuesIndices r = max(x, 1);
  EXPECT_EQ(r.values.shape(), (Shape{2, 2}));
  EXPECT_EQ(values(r.values), (std::vector<double>{5, 9, 0, 3}));
  EXPECT_EQ(values(r.indices), (std::vector<double>{1, 2, 0, 1}));
  EXPECT_EQ(values(argmin(x, 1)), (std::vector<double>{0, 1, 1, 0}));
}

TEST(MaxDim, TransposedInput) {
  Tensor base = tensor({1, 6, 2, 5, 3, 4}, {2, 3});
  Tensor x = base.t();  // (3, 2): [[1, 5], [6, 3], [2, 4]]
  EXPECT_EQ(values(argmax(x, 0)), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(max(x, 0).values), (std::vector<double>{6, 5}));
  EXPECT_EQ(values(argmax(x, 1, true)), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(argmax(x, 1, true).shape(), (Shape{3, 1}));
}

TEST(MaxDim, NaNWinsAndIsIndexed) {
  Tensor x = tensor({1, kNaN, 3, kNaN, 2, 0}, {2, 3});
  ValuesIndices r = max(x, 1);
  EXPECT_TRUE(std::isnan(values(r.values)[0]));
  EXPECT_TRUE(std::isnan(values(r.values)[1]));
  EXPECT_EQ(values(r.indices), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(argmin(x, 1)), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(argmin(x, 0)), (std::vector<double>{1, 0, 1}));
}

TEST(MaxDim, GradientIsScatteredToTheIndices) {
  Tensor x = tensor({1, 9, 9, 4, -1, -3, -3, 0}, {2, 4}).requires_grad_();
  (max(x, 1).values * tensor({2, 3})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 2, 0, 0, 0, 0, 0, 3}));

  Tensor y = tensor({1, 8, 5, 2, 5, 9}, {3, 2}).requires_grad_();
  min(y.t(), 1, true).values.sum().backward();  // min over each column of y
  EXPECT_EQ(values(y.grad()), (std::vector<double>{1, 0, 0, 1, 0, 0}));
}

TEST(MaxDim, IntegerAndHalfInputs) {
  Tensor xi = from_vector<int32_t>({3, -1, 7, 7}, {2, 2});
  ValuesIndices r = max(xi, 0);
  EXPECT_EQ(r.values.dtype(), DType::i32);
  EXPECT_EQ(values(r.values), (std::vector<double>{7, 7}));
  EXPECT_EQ(values(r.indices), (std::vector<double>{1, 1}));
  Tensor xh = tensor({0.5, -2, 4, 4}, {2, 2}).to(DType::f16).requires_grad_();
  ValuesIndices h = min(xh, 1);
  EXPECT_EQ(h.values.dtype(), DType::f16);
  EXPECT_EQ(values(h.values), (std::vector<double>{-2, 4}));
  h.values.sum().backward();
  EXPECT_EQ(xh.grad().dtype(), DType::f16);
  EXPECT_EQ(values(xh.grad()), (std::vector<double>{0, 1, 1, 0}));
}

TEST(MaxDim, ScalarInput) {
  Tensor s = scalar_tensor(2.5).requires_grad_();
  ValuesIndices r = max(s, 0);
  EXPECT_EQ(r.values.shape(), Shape{});
  EXPECT_EQ(r.values.item(), 2.5);
  EXPECT_EQ(r.indices.item<int64_t>(), 0);
  r.values.backward();
  EXPECT_EQ(s.grad().item(), 1.0);
}

TEST(MaxDim, ArgmaxRecordsNoHistory) {
  Tensor x = tensor({1, 2}).requires_grad_();
  EXPECT_FALSE(argmax(x, 0).requires_grad());
  EXPECT_TRUE(max(x, 0).values.requires_grad());
}

TEST(MaxDim, BadDimsAreErrors) {
  expect_error<IndexError>([] { max(zeros({2, 3}), 2); }, {"max", "dim 2", "[-2, 1]"});
  expect_error<IndexError>([] { argmin(zeros({2, 3}), -3); }, {"argmin", "dim -3"});
  expect_error<ValueError>([] { max(zeros({2, 0}), 1); },
                           {"max: cannot reduce an empty dim of size 0", "(2, 0)"});
  // Reducing a non-empty dim of an empty tensor is fine: the result is empty.
  EXPECT_EQ(max(zeros({0, 3}), 1).values.shape(), (Shape{0}));
}

TEST(Reduction, ScalarWithExplicitDimIsItself) {
  EXPECT_DOUBLE_EQ(sum(scalar_tensor(2.0), {0}).item(), 2.0);
  EXPECT_DOUBLE_EQ(mean(scalar_tensor(3.0), {-1}, true).item(), 3.0);
  EXPECT_THROW(sum(scalar_tensor(2.0), {1}), IndexError);
}
