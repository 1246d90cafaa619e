// matmul, bmm and linear against a naive triple loop in double precision, and their gradients
// against the closed forms dA = g B^T, dB = A^T g (summed over broadcast batch dims).
//
// Tolerances: f32 results are compared with an absolute 1e-4 * sqrt(k) (values are standard
// normal, so a length-k dot product is O(sqrt(k)) and f32 rounding is ~1e-7 relative per term);
// f64 results with 1e-10.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "cohort/core/core.h"

using namespace cohort;

namespace {

std::vector<double> values(const Tensor& t) {
  const Tensor c = t.detach().to(DType::f64).contiguous();
  const double* p = c.data_ptr<double>();
  return std::vector<double>(p, p + c.numel());
}

// (n, k) @ (k, m), row-major.
std::vector<double> naive_mm(const std::vector<double>& a, const std::vector<double>& b, int64_t n, int64_t k,
                             int64_t m) {
  std::vector<double> c(n * m, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j)
      for (int64_t p = 0; p < k; ++p) c[i * m + j] += a[i * k + p] * b[p * m + j];
  return c;
}

std::vector<double> transpose(const std::vector<double>& a, int64_t rows, int64_t cols) {
  std::vector<double> t(a.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) t[j * rows + i] = a[i * cols + j];
  return t;
}

void expect_close(const Tensor& t, const std::vector<double>& ref, double tol) {
  const std::vector<double> v = values(t);
  ASSERT_EQ(v.size(), ref.size());
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double err = std::fabs(v[i] - ref[i]);
    if (!(err <= worst)) worst = err, at = i;
  }
  EXPECT_LE(worst, tol) << "element " << at << ": got " << v[at] << ", want " << ref[at];
}

double f32_tol(int64_t k) { return 1e-4 * std::sqrt(static_cast<double>(k)); }

template <class E, class F>
std::string error_of(const F& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

class MatmulSizes : public ::testing::TestWithParam<DType> {};

// Sizes straddle the fallback GEMM's register tiles and cache blocks (120 rows, 256 deep, 480
// columns), so edge tiles and multi-block sums are exercised on both backends.
TEST_P(MatmulSizes, MatchesNaiveLoop) {
  const DType dt = GetParam();
  Generator gen(1);
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1}, {7, 5, 3}, {37, 53, 29}, {130, 300, 530}};
  for (const auto& [n, k, m] : sizes) {
    Tensor a = randn({n, k}, dt, &gen), b = randn({k, m}, dt, &gen);
    Tensor c = matmul(a, b);
    EXPECT_EQ(c.shape(), (Shape{n, m}));
    EXPECT_EQ(c.dtype(), dt);
    expect_close(c, naive_mm(values(a), values(b), n, k, m), dt == DType::f64 ? 1e-10 : f32_tol(k));
  }
}

TEST_P(MatmulSizes, TransposedAndStridedViewsNeedNoCopyToBeRight) {
  const DType dt = GetParam();
  Generator gen(2);
  Tensor at = randn({40, 33}, dt, &gen), bt = randn({21, 40}, dt, &gen);
  // a = at^T (33, 40) column-major; b = bt^T (40, 21); c a strided slice of columns of a wider matrix.
  Tensor a = at.t(), b = bt.t();
  Tensor wide = randn({33, 80}, dt, &gen);
  Tensor a_cols = wide.slice(1, 0, 80, 2);  // (33, 40), col stride 2: copied internally
  const std::vector<double> ref_b = transpose(values(bt), 21, 40);
  const double tol = dt == DType::f64 ? 1e-10 : f32_tol(40);
  expect_close(matmul(a, b), naive_mm(transpose(values(at), 40, 33), ref_b, 33, 40, 21), tol);
  expect_close(matmul(a_cols, b), naive_mm(values(a_cols), ref_b, 33, 40, 21), tol);
}

INSTANTIATE_TEST_SUITE_P(Linalg, MatmulSizes, ::testing::Values(DType::f32, DType::f64),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Matmul, OneDimensionalOperandsFollowPyTorch) {
  Tensor v = tensor({1, 2, 3}), w = tensor({4, 5, 6});
  Tensor m = arange(6.0).reshape({3, 2});  // [[0,1],[2,3],[4,5]]
  Tensor dot = matmul(v, w);
  EXPECT_EQ(dot.shape(), Shape{});
  EXPECT_DOUBLE_EQ(dot.item(), 32.0);
  Tensor vm = matmul(v, m);  // (3) @ (3, 2) -> (2)
  EXPECT_EQ(vm.shape(), Shape{2});
  expect_close(vm, {16, 22}, 1e-6);
  Tensor mv = matmul(m.t(), v);  // (2, 3) @ (3) -> (2)
  EXPECT_EQ(mv.shape(), Shape{2});
  expect_close(mv, {16, 22}, 1e-6);
  Tensor batched = matmul(arange(12.0).reshape({2, 2, 3}), v);  // (2, 2, 3) @ (3) -> (2, 2)
  EXPECT_EQ(batched.shape(), (Shape{2, 2}));
  expect_close(batched, {8, 26, 44, 62}, 1e-5);
  Tensor left = matmul(v, arange(12.0).reshape({2, 3, 2}));  // (3) @ (2, 3, 2) -> (2, 2)
  EXPECT_EQ(left.shape(), (Shape{2, 2}));
  expect_close(left, {16, 22, 52, 58}, 1e-5);
}

TEST(Matmul, BatchDimsBroadcast) {
  Generator gen(3);
  Tensor a = randn({2, 1, 4, 5}, DType::f64, &gen), b = randn({3, 5, 6}, DType::f64, &gen);
  Tensor c = matmul(a, b);
  ASSERT_EQ(c.shape(), (Shape{2, 3, 4, 6}));
  const std::vector<double> va = values(a), vb = values(b);
  std::vector<double> ref;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      std::vector<double> ai(va.begin() + i * 20, va.begin() + (i + 1) * 20);
      std::vector<double> bj(vb.begin() + j * 30, vb.begin() + (j + 1) * 30);
      const std::vector<double> cij = naive_mm(ai, bj, 4, 5, 6);
      ref.insert(ref.end(), cij.begin(), cij.end());
    }
  expect_close(c, ref, 1e-10);
  // f32 through the same shapes (oneDNN's batch broadcasting when built with it).
  expect_close(matmul(a.to(DType::f32), b.to(DType::f32)), ref, f32_tol(5));
  // A batched left operand with a shared 2-D right operand (the x @ W of every layer).
  Tensor x = randn({3, 7, 5}, DType::f32, &gen), w = randn({5, 4}, DType::f32, &gen);
  expect_close(matmul(x, w), naive_mm(values(x), values(w), 21, 5, 4), f32_tol(5));
}

TEST(Matmul, BmmMatchesPerBatchProducts) {
  Generator gen(4);
  Tensor a = randn({3, 4, 6}, {}, &gen), b = randn({3, 6, 5}, {}, &gen);
  Tensor c = bmm(a, b);
  ASSERT_EQ(c.shape(), (Shape{3, 4, 5}));
  for (int64_t i = 0; i < 3; ++i) {
    expect_close(c.select(0, i), naive_mm(values(a.select(0, i)), values(b.select(0, i)), 4, 6, 5), f32_tol(6));
  }
}

TEST(Matmul, EmptyAndZeroDepthProducts) {
  EXPECT_EQ(matmul(zeros({0, 3}), ones({3, 4})).shape(), (Shape{0, 4}));
  Tensor c = matmul(ones({2, 0}), ones({0, 3}));
  EXPECT_EQ(c.shape(), (Shape{2, 3}));
  expect_close(c, std::vector<double>(6, 0.0), 0.0);
}

TEST(Matmul, F32AndF64Agree) {
  // With oneDNN, f32 runs on oneDNN and f64 on cohort's GEMM: the two backends must agree.
  Generator gen(5);
  Tensor a = randn({65, 257}, DType::f64, &gen), b = randn({257, 129}, DType::f64, &gen);
  expect_close(matmul(a.to(DType::f32), b.to(DType::f32)), values(matmul(a, b)), f32_tol(257));
}

TEST(Matmul, F64ResultDoesNotDependOnThreadCount) {
  Generator gen(6);
  Tensor a = randn({200, 300}, DType::f64, &gen), b = randn({300, 150}, DType::f64, &gen);
  const int threads = get_num_threads();
  set_num_threads(1);
  const std::vector<double> one = values(matmul(a, b));
  set_num_threads(2);
  const std::vector<double> two = values(matmul(a, b));
  set_num_threads(threads);
  EXPECT_EQ(one, two);
}

TEST(Matmul, F32IsRightAfterTheThreadCountChanges) {
  // oneDNN primitives are built for one thread count; a cached one must not be reused for another.
  Generator gen(14);
  Tensor a = randn({150, 260}, {}, &gen), b = randn({260, 70}, {}, &gen);
  const std::vector<double> want = naive_mm(values(a), values(b), 150, 260, 70);
  const int threads = get_num_threads();
  for (int t : {1, 2, 1}) {
    set_num_threads(t);
    expect_close(matmul(a, b), want, f32_tol(260));
  }
  set_num_threads(threads);
}

TEST(Matmul, ConcurrentCallsFromThreadsShareTheCacheSafely) {
  // Thread-as-rank programs multiply from several threads at once: same and different shapes.
  Generator gen(13);
  const Tensor a = randn({33, 40}, {}, &gen), b = randn({40, 17}, {}, &gen), c = randn({17, 9}, {}, &gen);
  const std::vector<double> ab = naive_mm(values(a), values(b), 33, 40, 17);
  const std::vector<double> bc = naive_mm(values(b), values(c), 40, 17, 9);
  std::vector<double> worst(4, 0.0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep) {
        const bool first = (t + rep) % 2 == 0;
        const std::vector<double> got = values(first ? matmul(a, b) : matmul(b, c));
        const std::vector<double>& want = first ? ab : bc;
        for (size_t i = 0; i < got.size(); ++i) worst[t] = std::max(worst[t], std::fabs(got[i] - want[i]));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (double w : worst) EXPECT_LE(w, f32_tol(40));
}

TEST(Matmul, HalfTypesComputeInF32) {
  Generator gen(7);
  Tensor a = randn({8, 16}, {}, &gen), b = randn({16, 4}, {}, &gen);
  Tensor c = matmul(a.to(DType::bf16), b.to(DType::bf16));
  EXPECT_EQ(c.dtype(), DType::bf16);
  // Inputs and output rounded to bf16 (8 bits of mantissa): relative error ~1e-2 of the O(4) values.
  expect_close(c, values(matmul(a.to(DType::bf16).to(DType::f32), b.to(DType::bf16).to(DType::f32))), 0.05);
  EXPECT_EQ(matmul(a.to(DType::f16), b.to(DType::f16)).dtype(), DType::f16);
}

TEST(Matmul, GradientsAreGTimesBTransposeAndATransposeTimesG) {
  Generator gen(8);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = randn({5, 7}, dt, &gen).requires_grad_(), b = randn({7, 3}, dt, &gen).requires_grad_();
    Tensor g = randn({5, 3}, dt, &gen);
    matmul(a, b).backward(g);
    const double tol = dt == DType::f64 ? 1e-10 : 1e-4;
    expect_close(a.grad(), naive_mm(values(g), transpose(values(b), 7, 3), 5, 3, 7), tol);
    expect_close(b.grad(), naive_mm(transpose(values(a), 5, 7), values(g), 7, 5, 3), tol);
    EXPECT_EQ(a.grad().dtype(), dt);
  }
}

TEST(Matmul, GradientsSumOverBroadcastBatchDims) {
  Generator gen(9);
  // a (2, 1, 3, 4) and b (3, 4, 2) broadcast to a batch of (2, 3).
  Tensor a = randn({2, 1, 3, 4}, DType::f64, &gen).requires_grad_();
  Tensor b = randn({3, 4, 2}, DType::f64, &gen).requires_grad_();
  Tensor g = randn({2, 3, 3, 2}, DType::f64, &gen);
  matmul(a, b).backward(g);
  ASSERT_EQ(a.grad().shape(), a.shape());
  ASSERT_EQ(b.grad().shape(), b.shape());
  const std::vector<double> va = values(a), vb = values(b), vg = values(g);
  std::vector<double> ga(va.size(), 0.0), gb(vb.size(), 0.0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      std::vector<double> ai(va.begin() + i * 12, va.begin() + (i + 1) * 12);
      std::vector<double> bj(vb.begin() + j * 8, vb.begin() + (j + 1) * 8);
      std::vector<double> gij(vg.begin() + (i * 3 + j) * 6, vg.begin() + (i * 3 + j + 1) * 6);
      const std::vector<double> dai = naive_mm(gij, transpose(bj, 4, 2), 3, 2, 4);
      const std::vector<double> dbj = naive_mm(transpose(ai, 3, 4), gij, 4, 3, 2);
      for (int q = 0; q < 12; ++q) ga[i * 12 + q] += dai[q];
      for (int q = 0; q < 8; ++q) gb[j * 8 + q] += dbj[q];
    }
  expect_close(a.grad(), ga, 1e-10);
  expect_close(b.grad(), gb, 1e-10);
}

TEST(Matmul, GradientOfASharedMatrixSumsOverTheBatch) {
  Generator gen(10);
  Tensor x = randn({4, 3, 5}, DType::f64, &gen).requires_grad_();
  Tensor w = randn({5, 2}, DType::f64, &gen).requires_grad_();
  Tensor g = randn({4, 3, 2}, DType::f64, &gen);
  matmul(x, w).backward(g);
  // Rows of all batches stacked: dW = X^T G with X (12, 5), G (12, 2).
  expect_close(w.grad(), naive_mm(transpose(values(x), 12, 5), values(g), 5, 12, 2), 1e-10);
  expect_close(x.grad(), naive_mm(values(g), transpose(values(w), 5, 2), 12, 2, 5), 1e-10);
}

TEST(Matmul, GradientsOfVectorOperands) {
  Tensor v = tensor({1, 2, 3}).requires_grad_(), w = tensor({4, 5, 6}).requires_grad_();
  matmul(v, w).backward();
  expect_close(v.grad(), {4, 5, 6}, 0.0);
  expect_close(w.grad(), {1, 2, 3}, 0.0);
  Tensor m = arange(6.0).reshape({2, 3}).requires_grad_();
  Tensor u = tensor({1, -1, 2}).requires_grad_();
  matmul(m, u).backward(tensor({1, 10}));  // (2, 3) @ (3) -> (2)
  expect_close(m.grad(), {1, -1, 2, 10, -10, 20}, 0.0);
  expect_close(u.grad(), {30, 41, 52}, 1e-6);
}

TEST(Linear, MatchesXWTransposePlusBias) {
  Generator gen(11);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = randn({2, 3, 6}, dt, &gen), w = randn({4, 6}, dt, &gen), b = randn({4}, dt, &gen);
    std::vector<double> ref = naive_mm(values(x), transpose(values(w), 4, 6), 6, 6, 4);
    const std::vector<double> vb = values(b);
    const double tol = dt == DType::f64 ? 1e-10 : f32_tol(6);
    expect_close(linear(x, w), ref, tol);
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += vb[i % 4];
    Tensor y = linear(x, w, b);
    EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
    expect_close(y, ref, tol);
    Tensor y1 = linear(x.select(0, 0).select(0, 0), w, b);  // 1-D input -> (4)
    EXPECT_EQ(y1.shape(), Shape{4});
    expect_close(y1, std::vector<double>(ref.begin(), ref.begin() + 4), tol);
  }
}

TEST(Linear, Gradients) {
  Generator gen(12);
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = randn({2, 3, 5}, dt, &gen).requires_grad_();
    Tensor w = randn({4, 5}, dt, &gen).requires_grad_();
    Tensor b = randn({4}, dt, &gen).requires_grad_();
    Tensor g = randn({2, 3, 4}, dt, &gen);
    linear(x, w, b).backward(g);
    const double tol = dt == DType::f64 ? 1e-10 : 1e-4;
    expect_close(x.grad(), naive_mm(values(g), values(w), 6, 4, 5), tol);                   // G W
    expect_close(w.grad(), naive_mm(transpose(values(g), 6, 4), values(x), 4, 6, 5), tol);  // G^T X
    std::vector<double> db(4, 0.0);
    const std::vector<double> vg = values(g);
    for (size_t i = 0; i < vg.size(); ++i) db[i % 4] += vg[i];
    expect_close(b.grad(), db, tol);
    EXPECT_EQ(w.grad().shape(), w.shape());
  }
}

TEST(Linear, WithoutBiasGivesNoBiasGradientAndKeepsTheOthers) {
  Tensor x = ones({3, 2}).requires_grad_(), w = ones({5, 2}).requires_grad_();
  linear(x, w).sum().backward();
  expect_close(x.grad(), std::vector<double>(6, 5.0), 0.0);
  expect_close(w.grad(), std::vector<double>(10, 3.0), 0.0);
}

TEST(LinalgErrors, MessagesNameTheOpAndShapes) {
  EXPECT_EQ(error_of<ShapeError>([] {
              matmul(zeros({4, 3}), zeros({5, 2}));
            }),
            "matmul: shapes (4, 3) and (5, 2) cannot be multiplied: inner dims 3 and 5 differ");
  EXPECT_EQ(error_of<ShapeError>([] { matmul(zeros({3}), zeros({4})); }),
            "matmul: shapes (3) and (4) cannot be multiplied: inner dims 3 and 4 differ");
  EXPECT_NE(error_of<ShapeError>([] {
              matmul(zeros({2, 4, 3}), zeros({3, 3, 5}));
            }).find("cannot be broadcast"),
            std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] { matmul(zeros({}), zeros({3})); }).find("at least 1 dim"), std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] { bmm(zeros({2, 3}), zeros({2, 3, 4})); }).find("expected 3-D"), std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] {
              bmm(zeros({2, 3, 4}), zeros({3, 4, 4}));
            }).find("batch sizes 2 and 3"),
            std::string::npos);
  EXPECT_EQ(error_of<ShapeError>([] {
              bmm(zeros({2, 3, 4}), zeros({2, 5, 4}));
            }),
            "bmm: shapes (2, 3, 4) and (2, 5, 4) cannot be multiplied: inner dims 4 and 5 differ");
  EXPECT_NE(error_of<ShapeError>([] { linear(zeros({2, 3}), zeros({4, 5})); }).find("(2, 3)"), std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] {
              linear(zeros({2, 3}), zeros({4, 3}), zeros({5}));
            }).find("bias"),
            std::string::npos);
  EXPECT_NE(error_of<ShapeError>([] { linear(zeros({2, 3}), zeros({3})); }).find("weight"), std::string::npos);
}

TEST(LinalgErrors, IntegerAndMixedDtypesAreRejected) {
  EXPECT_NE(error_of<DTypeError>([] {
              matmul(zeros({2, 2}, DType::i64), zeros({2, 2}, DType::i64));
            }).find("matmul"),
            std::string::npos);
  EXPECT_NE(error_of<DTypeError>([] {
              matmul(zeros({2, 2}), zeros({2, 2}, DType::f64));
            }).find("f32 and f64"),
            std::string::npos);
  EXPECT_THROW(bmm(zeros({1, 2, 2}, DType::i32), zeros({1, 2, 2}, DType::i32)), DTypeError);
  EXPECT_THROW(linear(zeros({2, 2}), zeros({2, 2}), zeros({2}, DType::f64)), DTypeError);
}
