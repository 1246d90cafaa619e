// Finite-difference gradient checks (f64), one TEST per differentiable op: the checker's own
// failure modes, then arithmetic, reductions, views, unary and selection ops, with the cases where
// gradients usually go wrong: broadcasting, views and non-contiguous inputs, ties avoided.
// (linalg, conv/pools, nn and indexing ops: gradcheck_nn_test.cpp.)
//
// Inputs are tiny (a few dozen elements): each element costs two forward evaluations. Random
// inputs keep elements away from kinks (relu/abs at 0, ties in max/min/pools, clamp bounds).
// Tolerances are gradcheck's defaults (eps 1e-6, atol 1e-5, rtol 1e-4) unless a test says otherwise.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cohort/core/core.h"
#include "core/gradcheck.h"

using namespace cohort;
using cohort::test::gradcheck;
using cohort::test::gradcheck_input;
using cohort::test::positive_input;
using cohort::test::transposed_input;
using In = std::vector<Tensor>;

namespace {

// ---- ops with deliberately wrong gradients: the checker itself must be able to fail ----

// y = x * x recorded with the gradient g * x: the factor 2 is missing.
Tensor square_with_wrong_gradient(const Tensor& x) {
  Tensor xd = x.detach();
  Tensor out = xd * xd;
  return record(out, "wrong_square", {x}, [xd](const Tensor& g, const GradNeeds&) { return grads(g * xd); });
}

// y = x (2-D) recorded with a gradient that transposes g: right for a plain sum, wrong otherwise.
Tensor identity_with_transposed_gradient(const Tensor& x) {
  Tensor out = x.detach().clone();
  const Shape shape = x.shape();
  return record(out, "wrong_identity", {x}, [shape](const Tensor& g, const GradNeeds&) {
    return grads(g.t().contiguous().reshape(shape));
  });
}

}  // namespace

TEST(Gradcheck, FailsOnAWrongGradient) {
  Generator gen(1);
  Tensor x = gradcheck_input({3}, gen);
  ::testing::AssertionResult r = gradcheck([](const In& in) { return square_with_wrong_gradient(in[0]); }, {x});
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("analytic"), std::string::npos) << r.message();
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0] * in[0]; }, {x}));  // the right gradient passes
}

TEST(Gradcheck, FailsOnAGradientThatIsOnlyRightForAPlainSum) {
  Generator gen(2);
  Tensor x = gradcheck_input({3, 3}, gen);
  EXPECT_FALSE(gradcheck([](const In& in) { return identity_with_transposed_gradient(in[0]); }, {x}));
}

TEST(Gradcheck, FailsWhenTheOpRecordsNoHistory) {
  Generator gen(3);
  Tensor x = gradcheck_input({2}, gen);
  ::testing::AssertionResult r = gradcheck([](const In& in) { return in[0].detach() * 2.0; }, {x});
  EXPECT_FALSE(r);
  EXPECT_NE(std::string(r.message()).find("does not require grad"), std::string::npos) << r.message();
}

// ---- arithmetic ----

TEST(GradcheckOps, Add) {
  Generator gen(10);
  EXPECT_TRUE(gradcheck([](const In& in) { return add(in[0], in[1]); },
                        {gradcheck_input({2, 3}, gen), gradcheck_input({3}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return add(in[0], in[1]); },  // both sides broadcast
                        {gradcheck_input({2, 1}, gen), gradcheck_input({1, 3}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0] + 1.5; }, {transposed_input(3, 2, gen)}));
}

TEST(GradcheckOps, Sub) {
  Generator gen(11);
  EXPECT_TRUE(gradcheck([](const In& in) { return sub(in[0], in[1]); },
                        {gradcheck_input({4, 1, 2}, gen), gradcheck_input({3, 1}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return 2.0 - in[0]; }, {gradcheck_input({3}, gen)}));
}

TEST(GradcheckOps, Mul) {
  Generator gen(12);
  EXPECT_TRUE(gradcheck([](const In& in) { return mul(in[0], in[1]); },
                        {gradcheck_input({2, 3}, gen), gradcheck_input({2, 1}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return mul(in[0], in[1]); },
                        {transposed_input(3, 2, gen), gradcheck_input({}, gen)}));
  Tensor x = gradcheck_input({3}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return mul(in[0], in[0]); }, {x}));  // same input twice
}

TEST(GradcheckOps, Div) {
  Generator gen(13);
  EXPECT_TRUE(gradcheck([](const In& in) { return div(in[0], in[1]); },
                        {gradcheck_input({2, 3}, gen), positive_input({3}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return 1.0 / in[0]; }, {positive_input({2, 2}, gen)}));
}

TEST(GradcheckOps, Neg) {
  Generator gen(14);
  EXPECT_TRUE(gradcheck([](const In& in) { return neg(in[0]); }, {transposed_input(2, 3, gen)}));
}

// ---- sum and mean ----

TEST(GradcheckOps, Sum) {
  Generator gen(20);
  Tensor x = gradcheck_input({2, 3, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return sum(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return sum(in[0], {0, 2}); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return sum(in[0], {-1}, true); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return sum(in[0], {1}); }, {transposed_input(3, 4, gen)}));
}

TEST(GradcheckOps, Mean) {
  Generator gen(21);
  Tensor x = gradcheck_input({2, 3, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return mean(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return mean(in[0], {1}, true); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return mean(in[0], {0, -1}); }, {x}));
}

// ---- views and copies ----

TEST(GradcheckViews, ReshapeAndView) {
  Generator gen(30);
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].reshape({3, -1}) * in[1]; },
                        {gradcheck_input({2, 3}, gen), gradcheck_input({2}, gen)}));
  // reshape of a non-contiguous tensor copies; the gradient must still land in the right places.
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].reshape({6}); }, {transposed_input(2, 3, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].view({4, 3}); }, {gradcheck_input({2, 6}, gen)}));
}

TEST(GradcheckViews, PermuteTransposeT) {
  Generator gen(31);
  Tensor x = gradcheck_input({2, 3, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].permute({2, 0, 1}); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].transpose(0, 2); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].t(); }, {transposed_input(2, 3, gen)}));
}

TEST(GradcheckViews, NarrowSliceSelect) {
  Generator gen(32);
  Tensor x = gradcheck_input({5, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].narrow(0, 1, 3); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].slice(1, 0, 4, 2); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].slice(0, 1, 5, 3); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].select(1, -1); }, {x}));
  // Overlapping views of one input: the gradients of both must add up.
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].narrow(0, 0, 3) * in[0].narrow(0, 2, 3); }, {x}));
}

TEST(GradcheckViews, ExpandSqueezeUnsqueezeFlatten) {
  Generator gen(33);
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].expand({2, 3, 4}); }, {gradcheck_input({3, 1}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].expand({-1, 3}); }, {gradcheck_input({2, 1}, gen)}));
  Tensor x = gradcheck_input({2, 1, 3, 1}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].squeeze(); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].squeeze(1); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].unsqueeze(-1); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].flatten(1, 2); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].flatten(); }, {transposed_input(3, 2, gen)}));
}

TEST(GradcheckViews, ContiguousClone) {
  Generator gen(34);
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].contiguous(); }, {transposed_input(3, 2, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return in[0].clone() * in[0]; }, {gradcheck_input({4}, gen)}));
}

// ---- pow, maximum, minimum ----

TEST(GradcheckOps, PowTensor) {
  Generator gen(40);
  // Positive bases: the gradient with respect to the exponent is a^b log(a).
  EXPECT_TRUE(gradcheck([](const In& in) { return pow(in[0], in[1]); },
                        {positive_input({2, 3}, gen), gradcheck_input({3}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return pow(in[0], in[1]); },
                        {positive_input({3, 1}, gen), gradcheck_input({1, 2}, gen)}));
}

TEST(GradcheckOps, PowScalar) {
  Generator gen(41);
  EXPECT_TRUE(gradcheck([](const In& in) { return pow(in[0], 2.5); }, {positive_input({2, 3}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return pow(in[0], -1.5); }, {positive_input({4}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return pow(in[0], 3.0); }, {gradcheck_input({4}, gen)}));  // negative bases
}

TEST(GradcheckOps, Maximum) {
  Generator gen(42);
  EXPECT_TRUE(gradcheck([](const In& in) { return maximum(in[0], in[1]); },
                        {gradcheck_input({3, 4}, gen), gradcheck_input({4}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return maximum(in[0], in[1]); },
                        {transposed_input(2, 3, gen), gradcheck_input({2, 3}, gen)}));
}

TEST(GradcheckOps, Minimum) {
  Generator gen(43);
  EXPECT_TRUE(gradcheck([](const In& in) { return minimum(in[0], in[1]); },
                        {gradcheck_input({3, 1}, gen), gradcheck_input({1, 4}, gen)}));
}

// ---- unary ----

TEST(GradcheckOps, Abs) {
  Generator gen(50);
  EXPECT_TRUE(gradcheck([](const In& in) { return abs(in[0]); }, {gradcheck_input({3, 4}, gen)}));
}

TEST(GradcheckOps, Relu) {
  Generator gen(51);
  EXPECT_TRUE(gradcheck([](const In& in) { return relu(in[0]); }, {gradcheck_input({3, 4}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return relu(in[0]); }, {transposed_input(3, 2, gen)}));
}

TEST(GradcheckOps, Gelu) {
  Generator gen(52);
  Tensor x = gradcheck_input({3, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return gelu(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return gelu(in[0], "tanh"); }, {x}));
}

TEST(GradcheckOps, Tanh) {
  Generator gen(53);
  EXPECT_TRUE(gradcheck([](const In& in) { return tanh(in[0]); }, {gradcheck_input({3, 4}, gen)}));
}

TEST(GradcheckOps, Sigmoid) {
  Generator gen(54);
  EXPECT_TRUE(gradcheck([](const In& in) { return sigmoid(in[0]); }, {transposed_input(3, 4, gen)}));
}

TEST(GradcheckOps, Exp) {
  Generator gen(55);
  EXPECT_TRUE(gradcheck([](const In& in) { return exp(in[0]); }, {gradcheck_input({3, 4}, gen)}));
}

TEST(GradcheckOps, Log) {
  Generator gen(56);
  EXPECT_TRUE(gradcheck([](const In& in) { return log(in[0]); }, {positive_input({3, 4}, gen)}));
}

TEST(GradcheckOps, Sqrt) {
  Generator gen(57);
  EXPECT_TRUE(gradcheck([](const In& in) { return sqrt(in[0]); }, {positive_input({3, 4}, gen)}));
}

TEST(GradcheckOps, Square) {
  Generator gen(58);
  EXPECT_TRUE(gradcheck([](const In& in) { return square(in[0]); }, {transposed_input(2, 3, gen)}));
}

// ---- selection ----

TEST(GradcheckOps, Where) {
  Generator gen(60);
  Tensor cond = gt(randn({3, 4}, DType::f64, &gen), 0.0);
  EXPECT_TRUE(gradcheck([](const In& in) { return where(in[0], in[1], in[2]); },
                        {cond, gradcheck_input({3, 4}, gen), gradcheck_input({4}, gen)}));
  // The condition broadcasts too, and both values are broadcast against it.
  Tensor row = gt(randn({1, 4}, DType::f64, &gen), 0.0);
  EXPECT_TRUE(gradcheck([](const In& in) { return where(in[0], in[1], in[2]); },
                        {row, gradcheck_input({3, 1}, gen), gradcheck_input({}, gen)}));
}

TEST(GradcheckOps, MaskedFill) {
  Generator gen(61);
  Tensor mask = gt(randn({1, 4}, DType::f64, &gen), 0.0);
  EXPECT_TRUE(gradcheck([](const In& in) { return masked_fill(in[0], in[1], -2.0); },
                        {gradcheck_input({3, 4}, gen), mask}));
}

TEST(GradcheckOps, Clamp) {
  Generator gen(62);
  Tensor x = gradcheck_input({4, 5}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return clamp(in[0], -0.5, 0.7); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return clamp(in[0], -0.3); }, {x}));  // max open
  EXPECT_TRUE(gradcheck([](const In& in) { return clamp(in[0], -INFINITY, 0.2); }, {x}));
}

// ---- max, min (random inputs: no ties) ----

TEST(GradcheckOps, MaxAll) {
  Generator gen(70);
  EXPECT_TRUE(gradcheck([](const In& in) { return max(in[0]); }, {gradcheck_input({3, 4}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return max(in[0]); }, {transposed_input(3, 4, gen)}));
}

TEST(GradcheckOps, MinAll) {
  Generator gen(71);
  EXPECT_TRUE(gradcheck([](const In& in) { return min(in[0]); }, {gradcheck_input({3, 4}, gen)}));
}

TEST(GradcheckOps, MaxDim) {
  Generator gen(72);
  Tensor x = gradcheck_input({3, 4, 2}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return max(in[0], 1).values; }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return max(in[0], -1, true).values; }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return max(in[0], 0).values; }, {transposed_input(3, 4, gen)}));
}

TEST(GradcheckOps, MinDim) {
  Generator gen(73);
  Tensor x = gradcheck_input({3, 4, 2}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) {
    ValuesIndices r = min(in[0], 0, true);
    return std::vector<Tensor>{r.values, r.indices};  // indices (i64) are ignored
  }, {x}));
}
