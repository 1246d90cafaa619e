// GradScaler on the CPU: torch.cuda.amp.GradScaler's rules (scale, unscale_, skipped steps, the
// scale's backoff and growth, the order checks), and fit()'s step helpers that use it. The same
// logic runs on a GPU (tests/gpu/optim_checks.cpp compares the two).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "cohort/core/core.h"

using namespace cohort;

namespace {

// One f32 parameter p = (1, 1) with an SGD(lr 0.1) optimizer.
struct OneParam {
  Tensor p = ones({2}).requires_grad_();
  SGD sgd{{{"p", p}}, [] {
            SGDOptions o;
            o.lr = 0.1;
            return o;
          }()};
};

}  // namespace

TEST(GradScaler, ScalesTheLossAndUnscalesTheGradients) {
  OneParam m;
  GradScaler scaler;
  EXPECT_EQ(scaler.get_scale(), 65536.0);
  const Tensor loss = (m.p * tensor({3.0f, -2.0f})).sum();
  const Tensor scaled = scaler.scale(loss);
  EXPECT_FLOAT_EQ(scaled.item<float>(), 65536.0f * loss.item<float>());
  scaled.backward();
  EXPECT_FLOAT_EQ(m.p.grad().select(0, 0).item<float>(), 3.0f * 65536.0f);
  scaler.unscale_(m.sgd);
  EXPECT_FLOAT_EQ(m.p.grad().select(0, 0).item<float>(), 3.0f);
  EXPECT_FLOAT_EQ(m.p.grad().select(0, 1).item<float>(), -2.0f);
  EXPECT_TRUE(scaler.step(m.sgd));
  EXPECT_FLOAT_EQ(m.p.select(0, 0).item<float>(), 1.0f - 0.1f * 3.0f);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 65536.0);
  EXPECT_EQ(scaler.growth_tracker(), 1);
}

TEST(GradScaler, SkipsTheStepAndBacksOffOnInfOrNaN) {
  for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    OneParam m;
    GradScaler scaler;
    m.p.set_grad(tensor({1.0f, bad}));
    EXPECT_FALSE(scaler.step(m.sgd));  // unscale_ runs inside step()
    EXPECT_FLOAT_EQ(m.p.select(0, 0).item<float>(), 1.0f) << "a skipped step must leave the parameter alone";
    EXPECT_EQ(m.sgd.step_count(), 0);
    scaler.update();
    EXPECT_EQ(scaler.get_scale(), 32768.0);
    EXPECT_EQ(scaler.growth_tracker(), 0);
    // The next clean step goes through at the lower scale.
    m.p.set_grad(tensor({32768.0f, 32768.0f}));
    EXPECT_TRUE(scaler.step(m.sgd));
    EXPECT_FLOAT_EQ(m.p.select(0, 0).item<float>(), 0.9f);
    scaler.update();
    EXPECT_EQ(scaler.growth_tracker(), 1);
  }
}

TEST(GradScaler, GrowsAfterGrowthIntervalCleanStepsInARow) {
  OneParam m;
  GradScalerOptions o;
  o.init_scale = 4.0;
  o.growth_interval = 3;
  GradScaler scaler(o);
  auto clean_step = [&] {
    m.p.set_grad(tensor({1.0f, 1.0f}));
    EXPECT_TRUE(scaler.step(m.sgd));
    scaler.update();
  };
  clean_step();
  clean_step();
  EXPECT_EQ(scaler.get_scale(), 4.0);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  clean_step();
  EXPECT_EQ(scaler.get_scale(), 8.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
  // An overflow restarts the count.
  clean_step();
  m.p.set_grad(tensor({INFINITY, 1.0f}));
  scaler.step(m.sgd);
  scaler.update();
  EXPECT_EQ(scaler.get_scale(), 4.0);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(GradScaler, RefusesToGrowPastFloat) {
  OneParam m;
  GradScalerOptions o;
  o.init_scale = 3.0e38;  // x2 overflows f32
  o.growth_interval = 1;
  GradScaler scaler(o);
  m.p.set_grad(tensor({0.0f, 0.0f}));
  scaler.step(m.sgd);
  scaler.update();
  EXPECT_FLOAT_EQ(static_cast<float>(scaler.get_scale()), 3.0e38f);
  EXPECT_EQ(scaler.growth_tracker(), 0);
}

TEST(GradScaler, EnforcesTheOrderUnscaleStepUpdate) {
  OneParam m;
  GradScaler scaler;
  EXPECT_THROW(scaler.update(), ValueError);  // nothing recorded yet
  m.p.set_grad(tensor({1.0f, 1.0f}));
  scaler.unscale_(m.sgd);
  EXPECT_THROW(scaler.unscale_(m.sgd), ValueError);  // twice in one step
  scaler.step(m.sgd);
  EXPECT_THROW(scaler.step(m.sgd), ValueError);      // twice in one step
  EXPECT_THROW(scaler.unscale_(m.sgd), ValueError);  // after step
  scaler.update();
  m.p.set_grad(tensor({1.0f, 1.0f}));
  EXPECT_NO_THROW(scaler.unscale_(m.sgd));  // a new step
  // update() after unscale_ alone is allowed (torch allows it too).
  EXPECT_NO_THROW(scaler.update());
}

TEST(GradScaler, DisabledIsAPassThrough) {
  OneParam m;
  GradScalerOptions o;
  o.enabled = false;
  GradScaler scaler(o);
  const Tensor loss = m.p.sum();
  EXPECT_TRUE(scaler.scale(loss).is_same(loss));
  m.p.set_grad(tensor({INFINITY, 1.0f}));
  EXPECT_TRUE(scaler.step(m.sgd));  // no check: steps
  EXPECT_NO_THROW(scaler.update());
  EXPECT_EQ(scaler.get_scale(), 1.0);
}

TEST(GradScaler, UnscalesEveryFloatingDtypeAndNonContiguousGradients) {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16}) {
    Tensor p = zeros({3, 2}, dt).requires_grad_();
    SGD sgd({{"p", p}}, SGDOptions{});
    // An expanded (stride 0) gradient: unscaled once per element, not once per view.
    p.set_grad(full({1, 2}, 1024.0, dt).expand({3, 2}));
    GradScalerOptions o;
    o.init_scale = 1024.0;
    GradScaler scaler(o);
    scaler.unscale_(sgd);
    const Tensor g = p.grad().to(DType::f64).contiguous();
    for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(g.data_ptr<double>()[i], 1.0) << dtype_name(dt);
  }
}

TEST(GradScaler, StateDictRoundTrips) {
  GradScalerOptions o;
  o.init_scale = 128.0;
  GradScaler a(o);
  OneParam m;
  m.p.set_grad(tensor({1.0f, 1.0f}));
  a.step(m.sgd);
  a.update();
  GradScaler b;
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(b.get_scale(), 128.0);
  EXPECT_EQ(b.growth_tracker(), 1);
  EXPECT_THROW(b.load_state_dict(StateDict{}), ValueError);
}

TEST(TrainStep, OptimizerStepUnscalesBeforeClipping) {
  // Gradient (3, 4) x scale: clipping must see the true norm 5, not 5 x 65536.
  OneParam m;
  GradScaler scaler;
  MixedPrecision mp;
  mp.grad_scaler = &scaler;
  m.p.set_grad(tensor({3.0f, 4.0f}) * 65536.0);
  EXPECT_TRUE(optimizer_step(m.sgd, {m.p}, 1.0, mp));
  EXPECT_NEAR(m.p.grad().select(0, 0).item(), 0.6, 1e-5);
  EXPECT_NEAR(m.p.select(0, 1).item(), 1.0 - 0.1 * 0.8, 1e-5);
  EXPECT_EQ(scaler.growth_tracker(), 1);  // update() ran
}

TEST(TrainStep, ForwardBackwardStepScalesTheBackwardNotTheLossValue) {
  Tensor w = ones({2}).requires_grad_();
  GradScalerOptions o;
  o.init_scale = 8.0;
  GradScaler scaler(o);
  MixedPrecision mp;
  mp.grad_scaler = &scaler;
  Linear model(2, 1, false);
  model.weight.set_data(ones({1, 2}));
  Batch b{tensor({1.0f, 2.0f}).reshape({1, 2}), zeros({1, 1})};
  const StepOutput out = forward_backward_step(model, mse_loss_fn(), b, mp);
  EXPECT_FLOAT_EQ(static_cast<float>(out.loss), 9.0f);  // (1 + 2 - 0)^2
  // d/dw (x.w)^2 = 2 (x.w) x = (6, 12), times the scale 8.
  EXPECT_FLOAT_EQ(model.weight.grad().select(1, 1).item<float>(), 96.0f);
  EXPECT_EQ(model_device(model), Device::cpu());
}

TEST(TrainStep, PinnedLoaderWithoutAGpuSaysSo) {
  if (!cuda::is_available()) {
    DataLoaderOptions o;
    o.pin_memory = true;
    auto data = std::make_shared<TensorDataset>(zeros({4, 2}), zeros({4}));
    try {
      DataLoader loader(data, o);
      FAIL() << "expected DeviceError";
    } catch (const DeviceError& e) {
      EXPECT_NE(std::string(e.what()).find("pin_memory"), std::string::npos) << e.what();
    }
  }
}
