// softmax, log_softmax, cross_entropy, layer_norm, embedding and dropout: values on small known
// inputs, gradients on hand-checkable cases, and the errors bad inputs raise. (Finite-difference
// gradchecks and PyTorch parity live in their own tests.)
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
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

void expect_near(const Tensor& t, const std::vector<double>& expected, double tol) {
  const std::vector<double> v = values(t);
  ASSERT_EQ(v.size(), expected.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], expected[i], tol) << "element " << i;
}

// Runs f, expects an error of type E whose message contains every one of `parts`.
template <class E>
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace

// ---- softmax / log_softmax ----

TEST(Softmax, HandValuesAndRowsSumToOne) {
  // softmax([1, 2, 3]) = e^x / (e + e^2 + e^3).
  expect_near(softmax(tensor({1, 2, 3}), 0), {0.09003057, 0.24472847, 0.66524096}, 1e-6);
  Generator gen(1);
  Tensor x = randn({4, 7}, {}, &gen);
  expect_near(softmax(x, 1).sum({1}), std::vector<double>(4, 1.0), 1e-6);
  expect_near(softmax(x, 0).sum({0}), std::vector<double>(7, 1.0), 1e-6);
}

TEST(Softmax, MiddleDimMatchesLastDimOfThePermutedTensor) {
  // Dim 1 of (2, 5, 19) has inner = 19: one full block of 16 columns and a partial one.
  Generator gen(2);
  Tensor x = randn({2, 5, 19}, DType::f64, &gen);
  Tensor ref = softmax(x.permute({0, 2, 1}), 2).permute({0, 2, 1});
  expect_near(softmax(x, 1), values(ref), 1e-12);
  Tensor lref = log_softmax(x.permute({0, 2, 1}), -1).permute({0, 2, 1});
  expect_near(log_softmax(x, -2), values(lref), 1e-12);
}

TEST(Softmax, LargeLogitsStayFinite) {
  // exp(1000) overflows; subtracting the row max first must not.
  expect_near(log_softmax(tensor({1000, 0, -1000}), 0), {0, -1000, -2000}, 1e-3);
  expect_near(softmax(tensor({1e4, 1e4}), 0), {0.5, 0.5}, 1e-7);
  // A row of -inf has no defined softmax: NaN, like PyTorch.
  const double inf = INFINITY;
  EXPECT_TRUE(std::isnan(values(softmax(tensor({-inf, -inf}), 0))[0]));
}

TEST(Softmax, HalfTypesComputeInFloat) {
  Tensor x = tensor({1, 2, 3, 4}, {1, 4}).to(DType::bf16);
  Tensor y = softmax(x, 1);
  EXPECT_EQ(y.dtype(), DType::bf16);
  // bf16 keeps 8 bits of mantissa: 1e-2 relative.
  expect_near(y, {0.0320586, 0.0871443, 0.2368828, 0.6439143}, 5e-3);
  expect_near(log_softmax(x.to(DType::f16), 1), {-3.4401897, -2.4401897, -1.4401897, -0.4401897}, 5e-3);
}

TEST(Softmax, Gradients) {
  // y = softmax([0, 0]) = [.5, .5]; L = y0: dL/dx = y * (e0 - y0) = [.25, -.25].
  Tensor x = tensor({0, 0}).requires_grad_();
  softmax(x, 0).select(0, 0).backward();
  expect_near(x.grad(), {0.25, -0.25}, 1e-7);
  // L = log_softmax(x)_0: dL/dx = e0 - softmax(x) = [.5, -.5].
  Tensor z = tensor({0, 0}).requires_grad_();
  log_softmax(z, 0).select(0, 0).backward();
  expect_near(z.grad(), {0.5, -0.5}, 1e-7);
}

TEST(Softmax, MiddleDimGradientsMatchTheRowPath) {
  Generator gen(3);
  Tensor w = randn({3, 6, 20}, DType::f64, &gen);
  for (bool log : {false, true}) {
    Tensor a = randn({3, 6, 20}, DType::f64, &gen).requires_grad_();
    Tensor b = a.detach().clone().requires_grad_();
    Tensor ya = log ? log_softmax(a, 1) : softmax(a, 1);
    Tensor yb = (log ? log_softmax(b.permute({0, 2, 1}), 2) : softmax(b.permute({0, 2, 1}), 2)).permute({0, 2, 1});
    (ya * w).sum().backward();
    (yb * w).sum().backward();
    expect_near(a.grad(), values(b.grad()), 1e-12);
  }
}

TEST(Softmax, Errors) {
  expect_error<DTypeError>([] { softmax(ones({2}, DType::i64), 0); }, {"softmax", "i64"});
  expect_error<IndexError>([] { log_softmax(ones({2, 3}), 2); }, {"log_softmax", "dim 2"});
}

// ---- cross_entropy ----

// Logits [[1, 2, 3], [1, 1, 1]]: -log softmax picks log(e + e^2 + e^3) - x_t.
constexpr double kLse0 = 3.40760596;  // log(e^1 + e^2 + e^3)
constexpr double kLse1 = 2.09861229;  // log(3 e)

TEST(CrossEntropy, MatchesAHandComputation) {
  Tensor logits = tensor({1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor target = from_vector<int64_t>({2, 0});
  const double l0 = kLse0 - 3, l1 = kLse1 - 1;
  expect_near(cross_entropy(logits, target), {(l0 + l1) / 2}, 1e-6);
  expect_near(cross_entropy(logits, target, {-100, Reduction::sum}), {l0 + l1}, 1e-6);
  Tensor none = cross_entropy(logits, target, {-100, Reduction::none});
  EXPECT_EQ(none.shape(), (Shape{2}));
  expect_near(none, {l0, l1}, 1e-6);
  // i32 targets give the same.
  expect_near(cross_entropy(logits, target.to(DType::i32)), {(l0 + l1) / 2}, 1e-6);
}

TEST(CrossEntropy, IgnoreIndexDropsTargetsFromTheMean) {
  Tensor logits = tensor({1, 2, 3, 1, 1, 1}, {2, 3});
  expect_near(cross_entropy(logits, from_vector<int64_t>({2, -100})), {kLse0 - 3}, 1e-6);
  expect_near(cross_entropy(logits, from_vector<int64_t>({2, -100}), {-100, Reduction::none}), {kLse0 - 3, 0}, 1e-6);
  // An ignore_index inside [0, C) ignores that class.
  expect_near(cross_entropy(logits, from_vector<int64_t>({2, 0}), {0}), {kLse0 - 3}, 1e-6);
  // Everything ignored: the mean over zero targets is NaN (PyTorch's answer), the gradient zero.
  Tensor x = logits.detach().clone().requires_grad_();
  Tensor loss = cross_entropy(x, from_vector<int64_t>({-100, -100}));
  EXPECT_TRUE(std::isnan(loss.item()));
  loss.backward();
  expect_near(x.grad(), std::vector<double>(6, 0.0), 0);
}

TEST(CrossEntropy, GradientIsSoftmaxMinusOneHotOverCount) {
  Tensor x = tensor({1, 2, 3, 1, 1, 1, 5, 5, 5}, {3, 3}).requires_grad_();
  cross_entropy(x, from_vector<int64_t>({2, 0, -100})).backward();
  // Two targets count: (softmax - onehot) / 2, and zeros for the ignored row.
  const double s0 = 0.09003057, s1 = 0.24472847, s2 = 0.66524096, t = 1.0 / 3;
  expect_near(x.grad(), {s0 / 2, s1 / 2, (s2 - 1) / 2, (t - 1) / 2, t / 2, t / 2, 0, 0, 0}, 1e-6);

  // Reduction::none weights each row by its own incoming gradient.
  Tensor y = tensor({0, 0, 0, 0}, {2, 2}).requires_grad_();
  cross_entropy(y, from_vector<int64_t>({0, 1}), {-100, Reduction::none}).backward(tensor({2, 3}));
  expect_near(y.grad(), {2 * (0.5 - 1), 2 * 0.5, 3 * 0.5, 3 * (0.5 - 1)}, 1e-7);
}

TEST(CrossEntropy, SpatialTargetsMatchTheFlattenedForm) {
  // (N, C, d) logits against (N * d, C) rows: same mean loss and the same gradient.
  Generator gen(4);
  Tensor a = randn({2, 3, 5}, DType::f64, &gen).requires_grad_();
  Tensor b = a.detach().clone().requires_grad_();
  Tensor target = randint(0, 3, {2, 5}, DType::i64, &gen);
  Tensor la = cross_entropy(a, target);
  Tensor lb = cross_entropy(b.permute({0, 2, 1}).reshape({10, 3}), target.reshape({10}));
  EXPECT_NEAR(la.item(), lb.item(), 1e-12);
  la.backward();
  lb.backward();
  expect_near(a.grad(), values(b.grad()), 1e-12);
}

TEST(CrossEntropy, UnbatchedLogits) {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor loss = cross_entropy(x, scalar_tensor(2, DType::i64));
  EXPECT_NEAR(loss.item(), kLse0 - 3, 1e-6);
  loss.backward();
  expect_near(x.grad(), {0.09003057, 0.24472847, 0.66524096 - 1}, 1e-6);
}

TEST(CrossEntropy, Errors) {
  Tensor logits = zeros({2, 3});
  expect_error<IndexError>(
      [&] {
        cross_entropy(logits, from_vector<int64_t>({0, 5}));
      },
      {"cross_entropy", "target 5", "3 classes"});
  expect_error<IndexError>(
      [&] {
        cross_entropy(logits, from_vector<int64_t>({-1, 0}));
      },
      {"cross_entropy", "target -1"});
  expect_error<ShapeError>(
      [&] {
        cross_entropy(logits, from_vector<int64_t>({0, 1, 2}));
      },
      {"cross_entropy", "(2, 3)", "(3)", "(2)"});
  expect_error<DTypeError>([&] { cross_entropy(logits, zeros({2})); }, {"cross_entropy", "f32"});
  expect_error<DTypeError>(
      [&] {
        cross_entropy(zeros({2, 3}, DType::i64), from_vector<int64_t>({0, 1}));
      },
      {"cross_entropy", "i64"});
}

// ---- layer_norm ----

TEST(LayerNorm, RowsHaveMeanZeroAndVarianceOne) {
  Generator gen(5);
  Tensor x = randn({3, 2, 8}, DType::f64, &gen) * 5.0 + 2.0;
  Tensor y = layer_norm(x, {2, 8});
  const std::vector<double> v = values(y);
  for (int r = 0; r < 3; ++r) {
    double s = 0, s2 = 0;
    for (int j = 0; j < 16; ++j) s += v[r * 16 + j];
    for (int j = 0; j < 16; ++j) s2 += (v[r * 16 + j] - s / 16) * (v[r * 16 + j] - s / 16);
    EXPECT_NEAR(s / 16, 0.0, 1e-9);
    // Biased variance, off from 1 only by eps = 1e-5 against a variance of about 25.
    EXPECT_NEAR(s2 / 16, 1.0, 1e-5);
  }
}

TEST(LayerNorm, AffineHandValues) {
  // x = [1, 2, 3]: mean 2, biased var 2/3, xhat = [-1.2247, 0, 1.2247] (eps 1e-5 is below 1e-5 here).
  Tensor y = layer_norm(tensor({1, 2, 3}, {1, 3}), {3}, tensor({1, 2, 3}), tensor({0, 0, 1}));
  expect_near(y, {-1.2247357, 0, 3 * 1.2247357 + 1}, 1e-5);
}

TEST(LayerNorm, Gradients) {
  // L = y[0] for x = [1, 2, 3] without affine: dL/dx_j = rstd * (d0j - 1/3 - xhat_j * xhat_0 / 3)
  //   = rstd * [1/6, -1/3, 1/6] with rstd = 1/sqrt(2/3) (eps = 0 to make it exact).
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  layer_norm(x, {3}, Tensor(), Tensor(), 0.0).select(0, 0).backward();
  const double rstd = 1.0 / std::sqrt(2.0 / 3.0);
  expect_near(x.grad(), {rstd / 6, -rstd / 3, rstd / 6}, 1e-6);

  // L = sum(y * c): bias gets the column sums of c, weight the column sums of c * xhat.
  Tensor x2 = tensor({1, 2, 3, 3, 3, 6}, {2, 3});  // row 2: mean 4, var 2, xhat = [-.7071, -.7071, 1.4142]
  Tensor w = tensor({1, 1, 1}).requires_grad_();
  Tensor b = tensor({0, 0, 0}).requires_grad_();
  Tensor c = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  (layer_norm(x2, {3}, w, b) * c).sum().backward();
  expect_near(b.grad(), {5, 7, 9}, 1e-6);
  expect_near(w.grad(), {1 * -1.2247357 + 4 * -0.7071050, 5 * -0.7071050, 3 * 1.2247357 + 6 * 1.4142100}, 1e-4);
}

TEST(LayerNorm, InputGradientIsOrthogonalToOnesAndXhat) {
  // Normalisation removes the mean and scale: dL/dx sums to 0 and to 0 against xhat, per row.
  Generator gen(6);
  Tensor x = randn({4, 10}, DType::f64, &gen).requires_grad_();
  Tensor w = randn({10}, DType::f64, &gen).requires_grad_();
  Tensor y = layer_norm(x, {10}, w, Tensor(), 0.0);
  (y * randn({4, 10}, DType::f64, &gen)).sum().backward();
  Tensor xhat = layer_norm(x.detach(), {10}, Tensor(), Tensor(), 0.0);
  expect_near(x.grad().sum({1}), std::vector<double>(4, 0.0), 1e-10);
  expect_near((x.grad() * xhat).sum({1}), std::vector<double>(4, 0.0), 1e-10);
  EXPECT_EQ(w.grad().shape(), (Shape{10}));
}

TEST(LayerNorm, Bf16InputWithF32Parameters) {
  Tensor x = tensor({1, 2, 3, 4}, {1, 4}).to(DType::bf16).requires_grad_();
  Tensor w = ones({4}).requires_grad_();
  Tensor y = layer_norm(x, {4}, w);
  EXPECT_EQ(y.dtype(), DType::bf16);
  y.sum().backward();
  EXPECT_EQ(x.grad().dtype(), DType::bf16);
  EXPECT_EQ(w.grad().dtype(), DType::f32);
  // sum(xhat) = 0.
  EXPECT_NEAR(w.grad().sum().item(), 0.0, 2e-2);
}

TEST(LayerNorm, Errors) {
  expect_error<ShapeError>([] { layer_norm(zeros({2, 3}), {4}); }, {"layer_norm", "(4)", "(2, 3)"});
  expect_error<ShapeError>([] { layer_norm(zeros({3}), {2, 3}); }, {"layer_norm", "(2, 3)", "(3)"});
  expect_error<ShapeError>([] { layer_norm(zeros({2, 3}), {3}, ones({2})); }, {"layer_norm", "weight", "(2)", "(3)"});
  expect_error<DTypeError>([] { layer_norm(zeros({2, 3}, DType::i32), {3}); }, {"layer_norm", "i32"});
}

// ---- embedding ----

TEST(Embedding, PicksRowsAndSumsGradientsOfRepeatedRows) {
  Tensor w = arange(12, DType::f32).reshape({4, 3}).detach().requires_grad_();
  Tensor idx = from_vector<int64_t>({0, 3, 3, 1}, {2, 2});
  Tensor y = embedding(w, idx);
  EXPECT_EQ(y.shape(), (Shape{2, 2, 3}));
  expect_near(y, {0, 1, 2, 9, 10, 11, 9, 10, 11, 3, 4, 5}, 0);
  (y * 2.0).sum().backward();
  expect_near(w.grad(), {2, 2, 2, 2, 2, 2, 0, 0, 0, 4, 4, 4}, 0);
  // i32 indices, and a 0-dim index gives one row.
  expect_near(embedding(w, from_vector<int32_t>({2})), {6, 7, 8}, 0);
  EXPECT_EQ(embedding(w, scalar_tensor(1, DType::i64)).shape(), (Shape{3}));
}

TEST(Embedding, Bf16TableGetsItsOwnDtypeGradient) {
  Tensor w = ones({3, 2}, DType::bf16).requires_grad_();
  embedding(w, from_vector<int64_t>(std::vector<int64_t>(300, 1))).sum().backward();
  EXPECT_EQ(w.grad().dtype(), DType::bf16);
  // 300 ones summed in f32 then rounded: exactly 300 (bf16 steps are 2 there); a bf16 running sum
  // would stall at 256.
  expect_near(w.grad(), {0, 0, 300, 300, 0, 0}, 0);
}

TEST(Embedding, Errors) {
  Tensor w = zeros({4, 3});
  expect_error<IndexError>([&] { embedding(w, from_vector<int64_t>({1, 4})); }, {"embedding", "index 4", "(4, 3)"});
  expect_error<IndexError>([&] { embedding(w, from_vector<int64_t>({-1})); }, {"embedding", "index -1"});
  expect_error<DTypeError>([&] { embedding(w, tensor({1})); }, {"embedding", "f32"});
  expect_error<ShapeError>([&] { embedding(zeros({4}), from_vector<int64_t>({1})); }, {"embedding", "(4)"});
}

// ---- thread-count independence ----

TEST(NnOps, SameBitsOnOneAndTwoThreads) {
  // Inputs big enough that every op splits its work across threads; the results (values and
  // gradients) must not depend on the split.
  auto run = [](int threads) {
    const int saved = get_num_threads();
    set_num_threads(threads);
    Generator gen(21);
    std::vector<std::vector<double>> out;
    Tensor x = randn({512, 100}, {}, &gen).requires_grad_();
    Tensor t = randint(0, 100, {512}, DType::i64, &gen);
    cross_entropy(x, t).backward();
    out.push_back(values(x.grad()));
    Tensor s = randn({16, 40, 70}, {}, &gen).requires_grad_();  // the middle-dim path
    Tensor y = softmax(s, 1);
    (y * y).sum().backward();
    out.push_back(values(y));
    out.push_back(values(s.grad()));
    Tensor h = randn({3000, 64}, {}, &gen).requires_grad_();
    Tensor w = randn({64}, {}, &gen).requires_grad_(), b = randn({64}, {}, &gen).requires_grad_();
    Tensor ln = layer_norm(h, {64}, w, b);
    (ln * ln).sum().backward();
    out.push_back(values(ln));
    out.push_back(values(h.grad()));
    out.push_back(values(w.grad()));
    out.push_back(values(b.grad()));
    Tensor table = randn({50, 64}, {}, &gen).requires_grad_();
    (embedding(table, randint(0, 50, {4000}, DType::i64, &gen)) * 3.0).sum().backward();
    out.push_back(values(table.grad()));
    set_num_threads(saved);
    return out;
  };
  const auto one = run(1), two = run(2);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) EXPECT_EQ(one[i], two[i]) << "result " << i;
}

// ---- dropout ----

TEST(Dropout, KeepsTheExpectationAndScalesSurvivors) {
  Generator gen(7);
  const int64_t n = 200000;
  Tensor y = dropout(ones({n}), 0.3, true, &gen);
  const std::vector<double> v = values(y);
  int64_t zeros_seen = 0;
  for (double e : v) {
    if (e == 0)
      ++zeros_seen;
    else
      EXPECT_NEAR(e, 1 / 0.7, 1e-6);
  }
  // Binomial: the zero fraction has std sqrt(.3 * .7 / n) = 0.001; 5 sigma.
  EXPECT_NEAR(static_cast<double>(zeros_seen) / n, 0.3, 0.005);
  EXPECT_NEAR(y.mean().item(), 1.0, 0.01);
}

TEST(Dropout, ReproducibleWithASeedAndOnAnyThreadCount) {
  const int threads = get_num_threads();
  Generator g1(11), g2(11), g3(12);
  Tensor x = ones({1001, 301});  // numel % 4 == 1: the last Philox counter is partly used
  set_num_threads(1);
  Tensor a = dropout(x, 0.5, true, &g1);
  set_num_threads(2);
  Tensor b = dropout(x, 0.5, true, &g2);
  Tensor c = dropout(x, 0.5, true, &g3);
  set_num_threads(threads);
  EXPECT_EQ(values(a), values(b));
  EXPECT_NE(values(a), values(c));
  // The generator moved on: a second draw differs from the first.
  EXPECT_NE(values(dropout(x, 0.5, true, &g1)), values(a));
  // The mask follows logical (row-major) order, not memory order.
  Generator g4(13), g5(13);
  Tensor t = randn({30, 40}, {}, &g4);
  Generator g6(99), g7(99);
  EXPECT_EQ(values(dropout(t.t(), 0.4, true, &g6)), values(dropout(t.t().contiguous(), 0.4, true, &g7)));
}

TEST(Dropout, GradientIsTheSameMaskAndScale) {
  Generator gen(8);
  Tensor x = ones({1000}).requires_grad_();
  Tensor y = dropout(x, 0.25, true, &gen);
  y.sum().backward();
  // With x = 1, y is exactly mask / (1 - p), which is also dy/dx.
  EXPECT_EQ(values(x.grad()), values(y));
}

TEST(Dropout, IdentityWhenNotTrainingOrPZero) {
  Tensor x = ones({5});
  EXPECT_TRUE(dropout(x, 0.5, false).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0).is_same(x));
}

TEST(Dropout, Errors) {
  expect_error<ValueError>([] { dropout(ones({2}), 1.0); }, {"dropout", "[0, 1)", "1"});
  expect_error<ValueError>([] { dropout(ones({2}), -0.1); }, {"dropout", "-0.1"});
  expect_error<DTypeError>([] { dropout(ones({2}, DType::i64), 0.5); }, {"dropout", "i64"});
}

// ---- scaled_dot_product_attention, self_attention (values against torch: tests/parity) ----

TEST(Attention, CausalFirstQuerySeesOnlyTheFirstKey) {
  Generator gen(21);
  Tensor q = randn({2, 5, 4}, DType::f32, &gen), k = randn({2, 5, 4}, DType::f32, &gen);
  Tensor v = randn({2, 5, 3}, DType::f32, &gen);
  Tensor y = scaled_dot_product_attention(q, k, v, true);
  // Row 0 attends to key 0 alone (weight exactly 1); a bug in the mask would mix in later keys.
  EXPECT_EQ(values(y.narrow(1, 0, 1)), values(v.narrow(1, 0, 1)));
}

TEST(Attention, OutputFollowsTheQueryLayout) {
  // q as (B, H, T, D) heads of a (B, T, H * D) projection: the output is a view of a dense
  // (B, T, H, D) block, so merging the heads back needs no copy.
  Tensor x = randn({2, 6, 12});
  Tensor q = x.reshape({2, 6, 3, 4}).permute({0, 2, 1, 3});
  Tensor y = scaled_dot_product_attention(q, q, q, true);
  EXPECT_TRUE(y.permute({0, 2, 1, 3}).is_contiguous());
  Tensor ref = scaled_dot_product_attention(q.contiguous(), q.contiguous(), q.contiguous(), true);
  EXPECT_EQ(values(y.contiguous()), values(ref));
}

TEST(Attention, SelfAttentionGradientIsOnePackedTensor) {
  Generator gen(22);
  Tensor qkv = randn({2, 7, 3 * 8}, DType::f32, &gen).requires_grad_();
  Tensor y = self_attention(qkv, 2, true);
  ASSERT_EQ(y.shape(), (Shape{2, 7, 8}));
  Tensor g = randn({2, 7, 8}, DType::f32, &gen);
  y.backward(g);
  // The same through scaled_dot_product_attention on the three thirds.
  Tensor x = qkv.detach().requires_grad_();
  auto heads = [](const Tensor& t) { return t.reshape({2, 7, 2, 4}).permute({0, 2, 1, 3}); };
  std::vector<Tensor> parts = split(x, 8, 2);
  Tensor y2 = scaled_dot_product_attention(heads(parts[0]), heads(parts[1]), heads(parts[2]), true)
                  .permute({0, 2, 1, 3})
                  .reshape({2, 7, 8});
  y2.backward(g);
  // Same kernels on the same numbers: equal exactly (the slices' zero padding adds nothing).
  EXPECT_EQ(values(y), values(y2));
  EXPECT_EQ(values(qkv.grad()), values(x.grad()));
}

TEST(Attention, Errors) {
  expect_error<ShapeError>([] { scaled_dot_product_attention(ones({2, 3, 4}), ones({2, 3, 5}), ones({2, 3, 4})); },
                           {"scaled_dot_product_attention", "share E", "(2, 3, 5)"});
  expect_error<ShapeError>([] { scaled_dot_product_attention(ones({2, 3, 4}), ones({3, 3, 4}), ones({3, 3, 4})); },
                           {"scaled_dot_product_attention", "batch dims", "no broadcasting"});
  expect_error<ShapeError>([] { scaled_dot_product_attention(ones({4}), ones({4}), ones({4})); },
                           {"scaled_dot_product_attention", "at least 2"});
  expect_error<DTypeError>([] { scaled_dot_product_attention(ones({3, 4}), ones({3, 4}), ones({3, 4}, DType::f64)); },
                           {"scaled_dot_product_attention", "same dtype", "f64"});
  expect_error<ShapeError>([] { self_attention(ones({2, 5, 12}), 3); }, {"self_attention", "divisible", "(2, 5, 12)"});
  expect_error<ValueError>([] { self_attention(ones({2, 5, 12}), 0); }, {"self_attention", "n_heads", "0"});
}
