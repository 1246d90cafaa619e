#include <gtest/gtest.h>

#include <cmath>

#include "cohort/core/core.h"

using namespace cohort;

namespace {
// One parameter p with gradient g, in f64 so hand-computed values compare exactly enough.
NamedTensors one_param(Tensor* p, double value, double grad) {
  *p = full({2}, value, DType::f64).requires_grad_();
  p->set_grad(full({2}, grad, DType::f64));
  return {{"p", *p}};
}
}  // namespace

TEST(SGD, MomentumAndNesterovFollowPyTorchsRule) {
  Tensor p;
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  SGD sgd(one_param(&p, 1.0, 0.5), o);
  sgd.step();  // buf = g = 0.5; p = 1 - 0.05
  EXPECT_NEAR(p.select(0, 0).item(), 0.95, 1e-12);
  sgd.step();  // buf = 0.9*0.5 + 0.5 = 0.95; p = 0.95 - 0.095
  EXPECT_NEAR(p.select(0, 0).item(), 0.855, 1e-12);

  Tensor q;
  o.nesterov = true;
  o.weight_decay = 0.1;
  SGD nesterov(one_param(&q, 1.0, 0.5), o);
  nesterov.step();  // d = 0.5 + 0.1*1 = 0.6; buf = 0.6; d = 0.6 + 0.9*0.6 = 1.14; p = 1 - 0.114
  EXPECT_NEAR(q.select(0, 0).item(), 0.886, 1e-12);
}

TEST(Adam, FirstStepMovesByLearningRate) {
  // With bias correction, Adam's first step is lr * g / (|g| + eps) ≈ lr * sign(g).
  Tensor p;
  AdamOptions o;
  o.lr = 0.01;
  Adam adam(one_param(&p, 1.0, 3.0), o);
  adam.step();
  EXPECT_NEAR(p.select(0, 0).item(), 0.99, 1e-8);
  Tensor q;
  o.weight_decay = 0.1;
  AdamW adamw(one_param(&q, 1.0, 3.0), o);
  adamw.step();  // p *= 1 - 0.01*0.1 first
  EXPECT_NEAR(q.select(0, 0).item(), 1.0 * (1 - 0.001) - 0.01, 1e-8);
}

TEST(Adam, BiasCorrectionCountsEachParametersOwnSteps) {
  // q has no gradient in the first step, so its first update is in the second: like torch, its
  // bias correction is that of a first update (t = 1, a move of ~lr), not of the optimizer's
  // second step (which would move it by ~0.0074).
  Tensor p = full({2}, 1.0, DType::f64).requires_grad_(), q = full({2}, 1.0, DType::f64).requires_grad_();
  AdamOptions o;
  o.lr = 0.01;
  Adam adam({{"p", p}, {"q", q}}, o);
  p.set_grad(full({2}, 3.0, DType::f64));
  adam.step();
  q.set_grad(full({2}, 3.0, DType::f64));
  adam.step();
  EXPECT_NEAR(q.select(0, 0).item(), 0.99, 1e-8);
  StateDict s = adam.state_dict();
  EXPECT_EQ(s.at("p.step").item<int64_t>(), 2);
  EXPECT_EQ(s.at("q.step").item<int64_t>(), 1);

  // The counts survive a state_dict round trip: a copy continues exactly like the original.
  Tensor p2 = p.detach().clone().requires_grad_(), q2 = q.detach().clone().requires_grad_();
  Adam copy({{"p", p2}, {"q", q2}}, o);
  copy.load_state_dict(s);
  for (Tensor* t : {&p, &q, &p2, &q2}) t->set_grad(full({2}, -1.0, DType::f64));
  adam.step();
  copy.step();
  EXPECT_NEAR(p2.select(0, 0).item(), p.select(0, 0).item(), 1e-15);
  EXPECT_NEAR(q2.select(0, 0).item(), q.select(0, 0).item(), 1e-15);
}

TEST(Optimizer, StateDictIsKeyedByParameterNameAndRoundTrips) {
  Tensor p;
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  SGD a(one_param(&p, 1.0, 0.5), o);
  a.step();
  StateDict s = a.state_dict();
  ASSERT_TRUE(s.count("p.momentum_buffer"));
  EXPECT_EQ(s.at("step").item<int64_t>(), 1);

  Tensor p2;
  SGD b(one_param(&p2, 0.95, 0.5), o);
  b.load_state_dict(s);
  b.step();
  a.step();
  EXPECT_NEAR(p2.select(0, 0).item(), p.select(0, 0).item(), 1e-12);

  s["nope.momentum_buffer"] = zeros({2}, DType::f64);
  try {
    b.load_state_dict(s);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos) << e.what();
  }
}

TEST(Optimizer, ParamGroupsHaveTheirOwnLearningRate) {
  Tensor a = ones({1}).requires_grad_(), b = ones({1}).requires_grad_();
  SGDOptions o;
  o.lr = 0.1;
  SGD sgd({{"a", a}}, o);
  ParamGroup g;
  g.params = {{"b", b}};
  g.lr = 1.0;
  g.weight_decay = NAN;
  sgd.add_param_group(g);
  a.set_grad(ones({1}));
  b.set_grad(ones({1}));
  sgd.step();
  EXPECT_NEAR(a.item(), 0.9, 1e-7);
  EXPECT_NEAR(b.item(), 0.0, 1e-7);
  ParamGroup dup;
  dup.params = {{"a", a}};
  EXPECT_THROW(sgd.add_param_group(dup), ValueError);
}

TEST(Optimizer, ClipGradNormScalesToMaxNorm) {
  Tensor a = zeros({2}).requires_grad_(), b = zeros({1}).requires_grad_();
  a.set_grad(tensor({3, 0}));
  b.set_grad(tensor({4}));
  const double norm = clip_grad_norm({a, b}, 1.0);
  EXPECT_NEAR(norm, 5.0, 1e-6);
  EXPECT_NEAR(a.grad().select(0, 0).item(), 0.6, 1e-5);
  EXPECT_NEAR(b.grad().item(), 0.8, 1e-5);
}

TEST(Schedule, WarmupThenCosineAndStep) {
  Tensor p = ones({1}).requires_grad_();
  SGDOptions o;
  o.lr = 1.0;
  SGD sgd({{"p", p}}, o);
  WarmupCosineLR cos(sgd, 4, 14, 0.1);
  EXPECT_NEAR(sgd.param_groups()[0].lr, 0.25, 1e-12);
  for (int i = 0; i < 3; ++i) cos.step();
  EXPECT_NEAR(sgd.param_groups()[0].lr, 1.0, 1e-12);
  for (int i = 0; i < 6; ++i) cos.step();  // step 9: halfway through the cosine (4..14)
  EXPECT_NEAR(sgd.param_groups()[0].lr, 0.1 + 0.9 * 0.5, 1e-12);
  for (int i = 0; i < 10; ++i) cos.step();
  EXPECT_NEAR(sgd.param_groups()[0].lr, 0.1, 1e-12);
  StepLR step(sgd, 2, 0.5);
  step.step();
  step.step();
  EXPECT_NEAR(sgd.param_groups()[0].lr, 0.5, 1e-12);
}
