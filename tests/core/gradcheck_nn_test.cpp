// Finite-difference gradient checks (f64), one TEST per differentiable op: matmul (batched,
// broadcast), bmm, linear, conv2d and pools with each option, softmax, cross_entropy (reductions,
// ignore_index, spatial), layer_norm with and without affine, embedding, dropout with a fixed
// generator, and the joining/gathering ops. (Elementwise ops and views: gradcheck_test.cpp.)
//
// Inputs are tiny (a few dozen elements): each element costs two forward evaluations. Random
// inputs keep elements away from ties (max_pool windows). Tolerances are gradcheck's defaults
// (eps 1e-6, atol 1e-5, rtol 1e-4).
#include <gtest/gtest.h>

#include <vector>

#include "cohort/core/core.h"
#include "core/gradcheck.h"

using namespace cohort;
using cohort::test::gradcheck;
using cohort::test::gradcheck_input;
using cohort::test::index_tensor;
using cohort::test::transposed_input;
using In = std::vector<Tensor>;

// ---- matmul, bmm, linear ----

TEST(GradcheckOps, Matmul) {
  Generator gen(80);
  auto mm = [](const In& in) { return matmul(in[0], in[1]); };
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({4}, gen), gradcheck_input({4}, gen)}));        // dot
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({2, 3}, gen), gradcheck_input({3, 4}, gen)}));  // matrix
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({3}, gen), gradcheck_input({3, 2}, gen)}));     // vector-matrix
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({2, 3}, gen), gradcheck_input({3}, gen)}));     // matrix-vector
  EXPECT_TRUE(gradcheck(mm, {transposed_input(2, 3, gen), transposed_input(3, 2, gen)}));    // strided operands
}

TEST(GradcheckOps, MatmulBatchedBroadcast) {
  Generator gen(81);
  auto mm = [](const In& in) { return matmul(in[0], in[1]); };
  // (2, 1, 2, 3) x (3, 3, 2) -> (2, 3, 2, 2): both batch dims broadcast.
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({2, 1, 2, 3}, gen), gradcheck_input({3, 3, 2}, gen)}));
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({2, 2, 3}, gen), gradcheck_input({3, 2}, gen)}));  // shared weight
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({3}, gen), gradcheck_input({2, 3, 2}, gen)}));     // 1-D x batched
  EXPECT_TRUE(gradcheck(mm, {gradcheck_input({2, 2, 3}, gen), gradcheck_input({3}, gen)}));     // batched x 1-D
}

TEST(GradcheckOps, Bmm) {
  Generator gen(82);
  EXPECT_TRUE(gradcheck([](const In& in) { return bmm(in[0], in[1]); },
                        {gradcheck_input({2, 3, 4}, gen), gradcheck_input({2, 4, 2}, gen)}));
  Tensor bt = randn({2, 2, 4}, DType::f64, &gen).transpose(1, 2).requires_grad_();
  EXPECT_TRUE(gradcheck([](const In& in) { return bmm(in[0], in[1]); }, {gradcheck_input({2, 3, 4}, gen), bt}));
}

TEST(GradcheckOps, Linear) {
  Generator gen(83);
  Tensor w = gradcheck_input({3, 4}, gen), b = gradcheck_input({3}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return linear(in[0], in[1], in[2]); }, {gradcheck_input({2, 4}, gen), w, b}));
  EXPECT_TRUE(gradcheck([](const In& in) { return linear(in[0], in[1]); }, {gradcheck_input({2, 4}, gen), w}));
  EXPECT_TRUE(gradcheck([](const In& in) { return linear(in[0], in[1], in[2]); },
                        {gradcheck_input({2, 2, 4}, gen), w, b}));  // (..., in)
  EXPECT_TRUE(gradcheck([](const In& in) { return linear(in[0], in[1], in[2]); }, {gradcheck_input({4}, gen), w, b}));
}


// ---- conv2d and pools ----

namespace {
Conv2dOptions conv_options(int64_t stride, int64_t padding, int64_t dilation, int64_t groups) {
  Conv2dOptions o;
  o.stride = stride;
  o.padding = padding;
  o.dilation = dilation;
  o.groups = groups;
  return o;
}

Pool2dOptions pool_options(int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad = true) {
  Pool2dOptions o;
  o.kernel_size = kernel;
  o.stride = stride;
  o.padding = padding;
  o.count_include_pad = count_include_pad;
  return o;
}

::testing::AssertionResult check_conv(Generator& gen, Shape x, Shape w, bool bias, Conv2dOptions o) {
  In inputs{gradcheck_input(x, gen), gradcheck_input(w, gen), bias ? gradcheck_input({w[0]}, gen) : Tensor()};
  return gradcheck([o](const In& in) { return conv2d(in[0], in[1], in[2], o); }, inputs);
}
}  // namespace

TEST(GradcheckOps, Conv2d) {
  Generator gen(90);
  EXPECT_TRUE(check_conv(gen, {2, 2, 4, 4}, {3, 2, 3, 3}, true, conv_options(1, 0, 1, 1)));
  EXPECT_TRUE(check_conv(gen, {1, 2, 4, 4}, {3, 2, 2, 2}, false, conv_options(1, 0, 1, 1)));  // no bias
}

TEST(GradcheckOps, Conv2dStride) {
  Generator gen(91);
  EXPECT_TRUE(check_conv(gen, {1, 2, 5, 5}, {2, 2, 3, 3}, true, conv_options(2, 0, 1, 1)));
}

TEST(GradcheckOps, Conv2dPadding) {
  Generator gen(92);
  EXPECT_TRUE(check_conv(gen, {1, 2, 3, 3}, {2, 2, 3, 3}, true, conv_options(1, 1, 1, 1)));
  EXPECT_TRUE(check_conv(gen, {1, 1, 4, 4}, {2, 1, 3, 3}, true, conv_options(2, 2, 1, 1)));
}

TEST(GradcheckOps, Conv2dDilation) {
  Generator gen(93);
  EXPECT_TRUE(check_conv(gen, {1, 2, 5, 5}, {2, 2, 2, 2}, true, conv_options(1, 0, 2, 1)));
  EXPECT_TRUE(check_conv(gen, {1, 1, 5, 5}, {1, 1, 3, 3}, false, conv_options(1, 1, 2, 1)));
}

TEST(GradcheckOps, Conv2dGroups) {
  Generator gen(94);
  EXPECT_TRUE(check_conv(gen, {1, 4, 3, 3}, {4, 2, 2, 2}, true, conv_options(1, 0, 1, 2)));
  EXPECT_TRUE(check_conv(gen, {1, 3, 4, 4}, {3, 1, 3, 3}, true, conv_options(1, 1, 1, 3)));  // depthwise
}

TEST(GradcheckOps, Conv2dNonContiguousInput) {
  Generator gen(95);
  Tensor x = randn({1, 4, 4, 2}, DType::f64, &gen).permute({0, 3, 1, 2}).requires_grad_();  // NHWC memory
  In inputs{x, gradcheck_input({2, 2, 3, 3}, gen), gradcheck_input({2}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return conv2d(in[0], in[1], in[2]); }, inputs));
}

TEST(GradcheckOps, MaxPool2d) {
  Generator gen(100);
  Tensor x = gradcheck_input({2, 2, 4, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return max_pool2d(in[0], pool_options(2, 0, 0)); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return max_pool2d(in[0], pool_options(3, 1, 0)); }, {x}));  // overlapping
  EXPECT_TRUE(gradcheck([](const In& in) { return max_pool2d(in[0], pool_options(3, 2, 1)); }, {x}));  // padded
  EXPECT_TRUE(gradcheck([](const In& in) { return max_pool2d(in[0], pool_options(2, 1, 1)); },
                        {gradcheck_input({1, 1, 3, 5}, gen)}));
}

TEST(GradcheckOps, AvgPool2d) {
  Generator gen(101);
  Tensor x = gradcheck_input({2, 2, 4, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return avg_pool2d(in[0], pool_options(2, 0, 0)); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return avg_pool2d(in[0], pool_options(3, 1, 0)); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return avg_pool2d(in[0], pool_options(3, 2, 1, true)); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return avg_pool2d(in[0], pool_options(3, 2, 1, false)); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return avg_pool2d(in[0], pool_options(2, 1, 1, false)); },
                        {gradcheck_input({1, 1, 3, 5}, gen)}));
}

// ---- attention ----

TEST(GradcheckOps, ScaledDotProductAttention) {
  Generator gen(115);
  Tensor q = gradcheck_input({2, 3, 2}, gen), k = gradcheck_input({2, 4, 2}, gen), v = gradcheck_input({2, 4, 3}, gen);
  for (bool causal : {false, true}) {
    EXPECT_TRUE(gradcheck([causal](const In& in) { return scaled_dot_product_attention(in[0], in[1], in[2], causal); },
                          {q, k, v}));
  }
  EXPECT_TRUE(gradcheck([](const In& in) { return scaled_dot_product_attention(in[0], in[1], in[2], true, 0.3); },
                        {q, k, v}));
}

TEST(GradcheckOps, SelfAttention) {
  Generator gen(116);
  EXPECT_TRUE(gradcheck([](const In& in) { return self_attention(in[0], 2, true); }, {gradcheck_input({2, 3, 12}, gen)}));
}

// ---- softmax, log_softmax, cross_entropy ----

TEST(GradcheckOps, Softmax) {
  Generator gen(110);
  Tensor x = gradcheck_input({2, 3, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return softmax(in[0], -1); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return softmax(in[0], 1); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return softmax(in[0], 0); }, {transposed_input(3, 4, gen)}));
}

TEST(GradcheckOps, LogSoftmax) {
  Generator gen(111);
  Tensor x = gradcheck_input({2, 3, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return log_softmax(in[0], -1); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return log_softmax(in[0], 1); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return log_softmax(in[0], 1); }, {transposed_input(3, 4, gen)}));
}

namespace {
CrossEntropyOptions ce_options(Reduction reduction, int64_t ignore_index = -100) {
  CrossEntropyOptions o;
  o.reduction = reduction;
  o.ignore_index = ignore_index;
  return o;
}
}  // namespace

TEST(GradcheckOps, CrossEntropy) {
  Generator gen(112);
  Tensor logits = gradcheck_input({4, 5}, gen);
  Tensor target = index_tensor({1, 0, 4, 1});
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    EXPECT_TRUE(gradcheck([r](const In& in) { return cross_entropy(in[0], in[1], ce_options(r)); }, {logits, target}));
  }
}

TEST(GradcheckOps, CrossEntropyIgnoreIndex) {
  Generator gen(113);
  Tensor logits = gradcheck_input({5, 3}, gen);
  Tensor target = index_tensor({2, -100, 0, 1, -100});  // the default ignore_index
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    EXPECT_TRUE(gradcheck([r](const In& in) { return cross_entropy(in[0], in[1], ce_options(r)); }, {logits, target}));
  }
  Tensor target2 = index_tensor({2, 1, 0, 1, 1});  // a custom ignore_index that is also a valid class
  EXPECT_TRUE(gradcheck([](const In& in) { return cross_entropy(in[0], in[1], ce_options(Reduction::mean, 1)); },
                        {logits, target2}));
}

TEST(GradcheckOps, CrossEntropySpatial) {
  Generator gen(114);
  Tensor logits = gradcheck_input({2, 3, 2, 2}, gen);  // (N, C, H, W)
  Tensor target = index_tensor({0, 2, 1, 1, 2, -100, 0, 1}, {2, 2, 2});
  EXPECT_TRUE(gradcheck([](const In& in) { return cross_entropy(in[0], in[1]); }, {logits, target}));
  EXPECT_TRUE(gradcheck([](const In& in) { return cross_entropy(in[0], in[1], ce_options(Reduction::none)); },
                        {logits, target}));
}

// ---- layer_norm, embedding, dropout ----

TEST(GradcheckOps, LayerNormAffine) {
  Generator gen(120);
  In inputs{gradcheck_input({3, 4}, gen), gradcheck_input({4}, gen), gradcheck_input({4}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return layer_norm(in[0], {4}, in[1], in[2]); }, inputs));
  In two_dims{gradcheck_input({2, 2, 3}, gen), gradcheck_input({2, 3}, gen), gradcheck_input({2, 3}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return layer_norm(in[0], {2, 3}, in[1], in[2]); }, two_dims));
  In weight_only{gradcheck_input({3, 4}, gen), gradcheck_input({4}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return layer_norm(in[0], {4}, in[1]); }, weight_only));
}

TEST(GradcheckOps, LayerNormWithoutAffine) {
  Generator gen(121);
  EXPECT_TRUE(gradcheck([](const In& in) { return layer_norm(in[0], {4}); }, {gradcheck_input({3, 4}, gen)}));
  EXPECT_TRUE(gradcheck([](const In& in) { return layer_norm(in[0], {3}, Tensor(), Tensor(), 1e-3); },
                        {transposed_input(2, 3, gen)}));
}

TEST(GradcheckOps, Embedding) {
  Generator gen(122);
  Tensor weight = gradcheck_input({5, 3}, gen);
  Tensor idx = index_tensor({4, 0, 4, 2, 1, 4}, {2, 3});  // repeated rows accumulate
  EXPECT_TRUE(gradcheck([](const In& in) { return embedding(in[0], in[1]); }, {weight, idx}));
}

TEST(GradcheckOps, Dropout) {
  Generator gen(123);
  Tensor x = gradcheck_input({4, 5}, gen);
  // A fresh generator with the same seed in every evaluation: every evaluation drops the same
  // elements, so the finite differences see the same mask as the analytic gradient.
  EXPECT_TRUE(gradcheck([](const In& in) {
    Generator g(7);
    return dropout(in[0], 0.4, true, &g);
  }, {x}));
  // Not training: the identity (the result may be x itself, a leaf root for backward).
  EXPECT_TRUE(gradcheck([](const In& in) { return dropout(in[0], 0.4, false); }, {x}));
}

TEST(GradcheckOps, DropoutUsesTheMaskOfItsForwardPass) {
  Generator gen(124);
  Tensor x = gradcheck_input({64}, gen);
  Generator g(9);
  Tensor y = dropout(x, 0.5, true, &g);
  y.sum().backward();
  NoGradGuard no_grad;
  // d sum(y) / dx = mask / (1 - p): 2 where y kept x (x is never exactly 0), 0 where it was dropped.
  Tensor kept = ne(y, 0.0).to(DType::f64);
  EXPECT_EQ(max(abs(x.grad() - kept * 2.0)).item(), 0.0);
  EXPECT_EQ(max(abs(y - x * kept * 2.0)).item(), 0.0);
}

// ---- joining, splitting, gathering ----

TEST(GradcheckOps, Cat) {
  Generator gen(130);
  In inputs{gradcheck_input({2, 3}, gen), gradcheck_input({1, 3}, gen), transposed_input(3, 3, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return cat(in, 0); }, inputs));
  In columns{gradcheck_input({2, 1}, gen), gradcheck_input({2, 3}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return cat(in, -1); }, columns));
}

TEST(GradcheckOps, Stack) {
  Generator gen(131);
  In inputs{gradcheck_input({2, 3}, gen), gradcheck_input({2, 3}, gen), transposed_input(2, 3, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return stack(in, 0); }, inputs));
  EXPECT_TRUE(gradcheck([](const In& in) { return stack(in, 2); }, inputs));
}

TEST(GradcheckOps, Split) {
  Generator gen(132);
  Tensor x = gradcheck_input({5, 4}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return split(in[0], 2, 0); }, {x}));  // 2, 2, 1
  EXPECT_TRUE(gradcheck([](const In& in) { return split(in[0], std::vector<int64_t>{1, 3}, 1); }, {x}));
  // Only some pieces used: the others contribute zero gradient.
  EXPECT_TRUE(gradcheck([](const In& in) { return split(in[0], 2, 0)[1]; }, {x}));
}

TEST(GradcheckOps, Chunk) {
  Generator gen(133);
  Tensor x = gradcheck_input({3, 5}, gen);
  EXPECT_TRUE(gradcheck([](const In& in) { return chunk(in[0], 3, 1); }, {x}));
  EXPECT_TRUE(gradcheck([](const In& in) { return chunk(in[0], 2, 0); }, {x}));
}

TEST(GradcheckOps, IndexSelect) {
  Generator gen(134);
  Tensor x = gradcheck_input({4, 3}, gen);
  Tensor idx = index_tensor({3, 0, 3, 1});  // repeats accumulate
  EXPECT_TRUE(gradcheck([](const In& in) { return index_select(in[0], 0, in[1]); }, {x, idx}));
  Tensor idx32 = from_vector<int32_t>({2, 2, 0});
  EXPECT_TRUE(gradcheck([](const In& in) { return index_select(in[0], 1, in[1]); }, {x, idx32}));
  EXPECT_TRUE(gradcheck([](const In& in) { return index_select(in[0], 0, in[1]); }, {transposed_input(4, 3, gen), idx}));
}

TEST(GradcheckOps, Gather) {
  Generator gen(135);
  Tensor x = gradcheck_input({3, 4}, gen);
  Tensor idx = index_tensor({0, 3, 3, 1, 2, 2, 0, 0, 1}, {3, 3});
  EXPECT_TRUE(gradcheck([](const In& in) { return gather(in[0], 1, in[1]); }, {x, idx}));
  Tensor idx0 = index_tensor({2, 0, 1, 2, 1, 1, 0, 0}, {2, 4});
  EXPECT_TRUE(gradcheck([](const In& in) { return gather(in[0], 0, in[1]); }, {x, idx0}));
}

TEST(GradcheckOps, IndexAdd) {
  Generator gen(136);
  Tensor idx = index_tensor({2, 0, 2});
  In inputs{gradcheck_input({4, 3}, gen), idx, gradcheck_input({3, 3}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return index_add(in[0], 0, in[1], in[2]); }, inputs));
  In columns{gradcheck_input({2, 4}, gen), idx, gradcheck_input({2, 3}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return index_add(in[0], 1, in[1], in[2]); }, columns));
}

TEST(GradcheckOps, ScatterAdd) {
  Generator gen(137);
  Tensor idx = index_tensor({0, 3, 3, 1, 2, 2}, {2, 3});
  In inputs{gradcheck_input({2, 4}, gen), idx, gradcheck_input({2, 3}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return scatter_add(in[0], 1, in[1], in[2]); }, inputs));
  Tensor idx0 = index_tensor({1, 0, 1, 1, 1, 0}, {2, 3});
  In rows{gradcheck_input({2, 3}, gen), idx0, gradcheck_input({3, 3}, gen)};
  EXPECT_TRUE(gradcheck([](const In& in) { return scatter_add(in[0], 0, in[1], in[2]); }, rows));
}
