#include <gtest/gtest.h>

#include "cohort/core/core.h"

using namespace cohort;

TEST(Autograd, ChainRuleThroughBroadcastAndViews) {
  Tensor a = tensor({1, 2, 3}).requires_grad_();
  Tensor b = tensor({10}).requires_grad_();
  Tensor y = (a * b + a).reshape({3, 1}).t().sum();  // sum(a*b + a)
  y.backward();
  EXPECT_DOUBLE_EQ(a.grad().select(0, 0).item(), 11.0);
  EXPECT_DOUBLE_EQ(b.grad().item(), 6.0);
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCalls) {
  Tensor a = tensor({2}).requires_grad_();
  (a * a).sum().backward();
  (a * a).sum().backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 8.0);
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor a = tensor({2}).requires_grad_();
  Tensor y;
  {
    NoGradGuard g;
    y = a * a;
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_THROW(y.sum().backward(), AutogradError);
}

TEST(Autograd, SecondBackwardNeedsRetainGraph) {
  Tensor a = tensor({3}).requires_grad_();
  Tensor y = (a * a).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_DOUBLE_EQ(a.grad().item(), 12.0);
  try {
    y.backward();
    FAIL() << "expected AutogradError";
  } catch (const AutogradError& e) {
    EXPECT_NE(std::string(e.what()).find("retain_graph"), std::string::npos) << e.what();
  }
}

TEST(Autograd, HookFiresOnceWhenTheLeafGradientIsFinal) {
  Tensor w = tensor({1, 1}).requires_grad_();
  std::vector<double> seen;
  w.register_hook([&](Tensor& leaf) { seen.push_back(leaf.grad().sum().item()); });
  // w is used three times; the hook must see the sum of all three contributions, once.
  Tensor y = (w * 2.0 + w * 3.0 + w).sum();
  y.backward();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_DOUBLE_EQ(seen[0], 12.0);
}

TEST(Autograd, LeafGradDoesNotAliasAnotherLeafsGrad) {
  Tensor a = tensor({1, 2}).requires_grad_();
  Tensor b = tensor({1, 2}).requires_grad_();
  (a.reshape({2}) + b).sum().backward();
  (a + b).sum().backward();  // accumulates in place into both grads
  EXPECT_DOUBLE_EQ(a.grad().sum().item(), 4.0);
  EXPECT_DOUBLE_EQ(b.grad().sum().item(), 4.0);
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor a = tensor({1, 2}).requires_grad_();
  EXPECT_THROW((a * a).backward(), AutogradError);
  (a * a).backward(tensor({1, 1}));
  EXPECT_DOUBLE_EQ(a.grad().select(0, 1).item(), 4.0);
}

TEST(Autograd, InPlaceOnLeafThatRequiresGradIsRefused) {
  Tensor a = tensor({1, 2}).requires_grad_();
  EXPECT_THROW(a.fill_(0), AutogradError);
  NoGradGuard g;
  a.fill_(0);
  EXPECT_DOUBLE_EQ(a.sum().item(), 0.0);
}

TEST(Autograd, BackwardFromALeafRootAccumulatesIntoIt) {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  backward({x}, {tensor({1, 1, 1})});
  backward({x}, {tensor({0, 2, 0})});
  EXPECT_DOUBLE_EQ(x.grad().select(0, 1).item(), 3.0);
}
