// cat, stack, split, chunk, index_select, gather, index_add and scatter_add: values, gradients
// and the errors bad inputs raise.
#include <gtest/gtest.h>

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

// 1-D unless a shape is given (from_vector makes a single value 0-dim).
Tensor i64(const std::vector<int64_t>& v, Shape shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
  return from_vector<int64_t>(v, std::move(shape));
}

}  // namespace

// ---- cat / stack ----

TEST(Cat, ValuesAlongEachDim) {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2});
  Tensor b = tensor({5, 6}, {1, 2});
  EXPECT_EQ(values(cat({a, b})), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  Tensor c = tensor({7, 8, 9, 10, 11, 12}, {2, 3});
  Tensor ac = cat({a, c}, -1);  // rows of a then rows of c: the per-row copy path
  EXPECT_EQ(ac.shape(), (Shape{2, 5}));
  EXPECT_EQ(values(ac), (std::vector<double>{1, 2, 7, 8, 9, 3, 4, 10, 11, 12}));
  // A non-contiguous input goes through the strided path and gives the same values.
  EXPECT_EQ(values(cat({a.t(), c}, 1)), (std::vector<double>{1, 3, 7, 8, 9, 2, 4, 10, 11, 12}));
  // Integer tensors and empty pieces.
  EXPECT_EQ(values(cat({i64({1, 2}), i64(std::vector<int64_t>{}, {0}), i64({3})})), (std::vector<double>{1, 2, 3}));
}

TEST(Cat, LargeRowsSplitAcrossThreads) {
  Generator gen(1);
  Tensor a = randn({300, 7}, {}, &gen), b = randn({300, 5}, {}, &gen);
  Tensor out = cat({a, b}, 1);
  EXPECT_EQ(values(out.narrow(1, 0, 7)), values(a));
  EXPECT_EQ(values(out.narrow(1, 7, 5)), values(b));
}

TEST(Cat, GradientsAreTheSlices) {
  Tensor a = tensor({1, 2, 3, 4}, {2, 2}).requires_grad_();
  Tensor b = tensor({5, 6}, {2, 1}).requires_grad_();
  Tensor w = tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  (cat({a, b}, 1) * w).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 2, 4, 5}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{3, 6}));
}

TEST(Cat, Errors) {
  expect_error<DTypeError>([] { cat({zeros({2}), zeros({2}, DType::f64)}); }, {"cat", "f32", "f64"});
  expect_error<ShapeError>([] { cat({zeros({2, 3}), zeros({2, 4})}, 0); }, {"cat", "dim 0", "(2, 3)", "(2, 4)"});
  expect_error<ShapeError>([] { cat({zeros({2, 3}), zeros({3})}, 1); }, {"cat", "(2, 3)", "(3)"});
  expect_error<ValueError>([] { cat({}); }, {"cat", "empty"});
  expect_error<IndexError>([] { cat({zeros({2})}, 1); }, {"cat", "dim 1"});
}

TEST(Stack, NewDimAndGradient) {
  Tensor a = tensor({1, 2, 3}).requires_grad_();
  Tensor b = tensor({4, 5, 6}).requires_grad_();
  Tensor s0 = stack({a, b});
  EXPECT_EQ(s0.shape(), (Shape{2, 3}));
  EXPECT_EQ(values(s0), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  Tensor s1 = stack({a, b}, -1);
  EXPECT_EQ(s1.shape(), (Shape{3, 2}));
  EXPECT_EQ(values(s1), (std::vector<double>{1, 4, 2, 5, 3, 6}));
  (s1 * tensor({1, 10, 2, 20, 3, 30}, {3, 2})).sum().backward();
  EXPECT_EQ(values(a.grad()), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(values(b.grad()), (std::vector<double>{10, 20, 30}));
  expect_error<ShapeError>([] { stack({zeros({2}), zeros({3})}); }, {"stack", "(2)", "(3)"});
}

// ---- split / chunk ----

TEST(Split, PiecesAreViews) {
  Tensor x = arange(10, DType::f32).reshape({5, 2});
  std::vector<Tensor> p = split(x, 2);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].shape(), (Shape{2, 2}));
  EXPECT_EQ(p[2].shape(), (Shape{1, 2}));
  EXPECT_EQ(values(p[2]), (std::vector<double>{8, 9}));
  EXPECT_EQ(p[1].storage(), x.storage());  // no copy
  std::vector<Tensor> q = split(x, std::vector<int64_t>{1, 0, 4});
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q[1].numel(), 0);
  EXPECT_EQ(values(q[2].select(0, 0)), (std::vector<double>{2, 3}));
  std::vector<Tensor> cols = split(x, 1, -1);
  EXPECT_EQ(values(cols[1]), (std::vector<double>{1, 3, 5, 7, 9}));
}

TEST(Split, ChunkUsesCeilSizes) {
  Tensor x = arange(5, DType::f32);
  std::vector<Tensor> c = chunk(x, 3);
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].numel(), 2);
  EXPECT_EQ(c[2].numel(), 1);
  // PyTorch's rule: 6 into 4 is pieces of 2, so only 3 pieces.
  EXPECT_EQ(chunk(arange(6, DType::f32), 4).size(), 3u);
}

TEST(Split, GradientFlowsIntoTheSlices) {
  Tensor x = tensor({1, 2, 3, 4, 5}).requires_grad_();
  std::vector<Tensor> p = split(x, std::vector<int64_t>{2, 3});
  (p[0] * 2.0).sum().backward(Tensor(), true);
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2, 0, 0, 0}));
  (p[1] * p[1]).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2, 6, 8, 10}));
}

TEST(Split, Errors) {
  expect_error<ShapeError>([] { split(zeros({5, 2}), std::vector<int64_t>{2, 2}); }, {"split", "(2, 2)", "4", "5"});
  expect_error<ValueError>([] { split(zeros({5}), 0); }, {"split", "0"});
  expect_error<ValueError>([] { chunk(zeros({5}), 0); }, {"chunk", "0"});
  expect_error<ValueError>([] { split(zeros({5}), std::vector<int64_t>{6, -1}); }, {"split", "non-negative"});
}

// ---- index_select / index_add ----

TEST(IndexSelect, ValuesAlongDims) {
  Tensor x = arange(6, DType::f32).reshape({2, 3});
  EXPECT_EQ(values(index_select(x, 0, i64({1, 1, 0}))), (std::vector<double>{3, 4, 5, 3, 4, 5, 0, 1, 2}));
  Tensor cols = index_select(x, 1, from_vector<int32_t>({2, 0}));
  EXPECT_EQ(cols.shape(), (Shape{2, 2}));
  EXPECT_EQ(values(cols), (std::vector<double>{2, 0, 5, 3}));
  EXPECT_EQ(values(index_select(x.t(), 0, i64({2}))), (std::vector<double>{2, 5}));  // strided input
  EXPECT_EQ(index_select(x, 0, i64(std::vector<int64_t>{}, {0})).shape(), (Shape{0, 3}));
}

TEST(IndexSelect, GradientSumsRepeatedRows) {
  Tensor x = zeros({3, 2}).requires_grad_();
  index_select(x, 0, i64({0, 0, 2})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{2, 2, 0, 0, 1, 1}));
}

TEST(IndexAdd, SumsRowsAndDifferentiatesBothInputs) {
  Tensor x = ones({3, 2}).requires_grad_();
  Tensor src = tensor({1, 2, 3, 4, 5, 6}, {3, 2}).requires_grad_();
  Tensor out = index_add(x, 0, i64({0, 2, 0}), src);
  EXPECT_EQ(values(out), (std::vector<double>{7, 9, 1, 1, 4, 5}));
  EXPECT_EQ(values(x), (std::vector<double>{1, 1, 1, 1, 1, 1}));  // out of place
  (out * tensor({1, 2, 3, 4, 5, 6}, {3, 2})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  // Source row k receives the gradient of output row index[k].
  EXPECT_EQ(values(src.grad()), (std::vector<double>{1, 2, 5, 6, 1, 2}));
  // Along dim 1, integer tensors.
  EXPECT_EQ(values(index_add(zeros({2, 2}, DType::i64), 1, i64({1, 1}), i64({1, 2, 3, 4}, {2, 2}))),
            (std::vector<double>{0, 3, 0, 7}));
}

TEST(IndexAdd, SameBitsOnOneAndTwoThreads) {
  Generator gen(2);
  Tensor x = zeros({7, 1000});
  Tensor src = randn({5000, 1000}, {}, &gen);
  Tensor idx = randint(0, 7, {5000}, DType::i64, &gen);
  const int threads = get_num_threads();
  set_num_threads(1);
  Tensor a = index_add(x, 0, idx, src);
  set_num_threads(2);
  Tensor b = index_add(x, 0, idx, src);
  set_num_threads(threads);
  EXPECT_EQ(values(a), values(b));
}

TEST(IndexSelectAndAdd, Errors) {
  Tensor x = zeros({2, 3});
  expect_error<IndexError>([&] { index_select(x, 1, i64({0, 3})); }, {"index_select", "index 3", "size 3", "(2, 3)"});
  expect_error<IndexError>([&] { index_select(x, 0, i64({-1})); }, {"index_select", "index -1"});
  expect_error<ShapeError>([&] { index_select(x, 0, i64({0, 1}, {1, 2})); }, {"index_select", "1-D", "(1, 2)"});
  expect_error<DTypeError>([&] { index_select(x, 0, tensor({0})); }, {"index_select", "f32"});
  expect_error<ShapeError>([&] { index_add(x, 0, i64({0}), zeros({2, 3})); }, {"index_add", "(1, 3)", "(2, 3)"});
  expect_error<DTypeError>([&] { index_add(x, 0, i64({0}), zeros({1, 3}, DType::f64)); }, {"index_add", "f64", "f32"});
  expect_error<IndexError>([&] { index_add(x, 0, i64({2}), zeros({1, 3})); }, {"index_add", "index 2"});
}

// ---- gather / scatter_add ----

TEST(Gather, PyTorchDocExamples) {
  Tensor x = tensor({1, 2, 3, 4}, {2, 2});
  // out[i][j] = x[i][index[i][j]]
  EXPECT_EQ(values(gather(x, 1, i64({0, 0, 1, 0}, {2, 2}))), (std::vector<double>{1, 1, 4, 3}));
  // out[i][j] = x[index[i][j]][j]
  EXPECT_EQ(values(gather(x, 0, i64({1, 0, 0, 0}, {2, 2}))), (std::vector<double>{3, 2, 1, 2}));
  // An index smaller than x in the other dims, and a strided x.
  Tensor y = arange(12, DType::f32).reshape({3, 4});
  EXPECT_EQ(values(gather(y, 1, i64({3, 0}, {2, 1}))), (std::vector<double>{3, 4}));
  EXPECT_EQ(values(gather(y.t(), 0, i64({2, 1}, {1, 2}))), (std::vector<double>{2, 5}));  // y.t()[i][j] = y[j][i]
  // 3-D, gathering along the middle dim.
  Tensor z = arange(24, DType::f32).reshape({2, 3, 4});
  EXPECT_EQ(values(gather(z, 1, i64({2, 0, 1, 1, 0, 0, 0, 2}, {2, 1, 4}))),
            (std::vector<double>{8, 1, 6, 7, 12, 13, 14, 23}));
}

TEST(Gather, GradientScattersBack) {
  Tensor x = zeros({2, 3}).requires_grad_();
  (gather(x, 1, i64({2, 2, 0, 1}, {2, 2})) * tensor({1, 2, 3, 4}, {2, 2})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 3, 3, 4, 0}));
}

TEST(ScatterAdd, SumsIntoPositions) {
  EXPECT_EQ(values(scatter_add(zeros({3}), 0, i64({0, 1, 0, 2}), tensor({1, 2, 3, 4}))),
            (std::vector<double>{4, 2, 4}));
  // 2-D along dim 0: out[index[i][j]][j] += src[i][j]; src larger than index is fine.
  Tensor out = scatter_add(ones({2, 3}), 0, i64({1, 0, 1, 1}, {2, 2}), tensor({1, 2, 3, 4, 5, 6}, {2, 3}));
  EXPECT_EQ(values(out), (std::vector<double>{1, 3, 1, 6, 6, 1}));
  // A strided source: src.t() = [[1, 3], [2, 4]].
  Tensor src = tensor({1, 2, 3, 4}, {2, 2});
  EXPECT_EQ(values(scatter_add(zeros({2, 2}), 1, i64({0, 0, 1, 1}, {2, 2}), src.t())),
            (std::vector<double>{4, 0, 0, 6}));
}

TEST(ScatterAdd, GradientsForInputAndSource) {
  Tensor x = zeros({2, 3}).requires_grad_();
  Tensor src = tensor({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  Tensor out = scatter_add(x, 1, i64({2, 2, 0, 1}, {2, 2}), src);
  (out * tensor({1, 2, 3, 4, 5, 6}, {2, 3})).sum().backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  // Source [i][j] gets g[i][index[i][j]]; column 2 of the source is not reached by the index.
  EXPECT_EQ(values(src.grad()), (std::vector<double>{3, 3, 0, 4, 5, 0}));
}

TEST(ScatterAdd, SameBitsOnOneAndTwoThreads) {
  Generator gen(3);
  Tensor src = randn({4000, 64}, {}, &gen);
  Tensor idx = randint(0, 5, {4000, 64}, DType::i64, &gen);
  const int threads = get_num_threads();
  set_num_threads(1);
  Tensor a = scatter_add(zeros({5, 64}), 0, idx, src);
  set_num_threads(2);
  Tensor b = scatter_add(zeros({5, 64}), 0, idx, src);
  set_num_threads(threads);
  EXPECT_EQ(values(a), values(b));
  // Every source element landed somewhere (f32 sums of 256k normals: 1e-2).
  EXPECT_NEAR(a.sum().item(), src.sum().item(), 1e-2);
}

TEST(GatherAndScatter, Errors) {
  Tensor x = zeros({2, 3});
  expect_error<IndexError>([&] { gather(x, 1, i64({0, 3}, {1, 2})); }, {"gather", "index 3", "size 3", "(2, 3)"});
  expect_error<ShapeError>([&] { gather(x, 1, i64({0, 0, 0}, {3, 1})); }, {"gather", "(3, 1)", "(2, 3)", "dim 0"});
  expect_error<ShapeError>([&] { gather(x, 1, i64({0})); }, {"gather", "(1)", "(2, 3)"});
  expect_error<DTypeError>([&] { gather(x, 1, zeros({2, 3})); }, {"gather", "f32"});
  expect_error<IndexError>([&] { scatter_add(x, 0, i64({2}, {1, 1}), ones({1, 1})); }, {"scatter_add", "index 2"});
  expect_error<ShapeError>(
      [&] {
        scatter_add(x, 0, i64({0, 0}, {1, 2}), ones({1, 1}));
      },
      {"scatter_add", "(1, 2)", "(1, 1)"});
  expect_error<DTypeError>(
      [&] {
        scatter_add(x, 0, i64({0}, {1, 1}), ones({1, 1}, DType::f64));
      },
      {"scatter_add", "f64"});
}
