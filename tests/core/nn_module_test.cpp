#include <gtest/gtest.h>

#include "cohort/core/core.h"

using namespace cohort;

namespace {
struct Net : Module {
  std::shared_ptr<Linear> fc1, fc2;
  Tensor running;
  Net() : Module("Net") {
    Generator gen(3);
    fc1 = register_module("fc1", std::make_shared<Linear>(4, 8, true, &gen));
    fc2 = register_module("fc2", std::make_shared<Linear>(8, 2, true, &gen));
    running = register_buffer("running", zeros({2}));
  }
  Tensor forward(const Tensor& x) override { return fc2->forward(relu(fc1->forward(x))); }
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(Module, NamedParametersUseDottedNamesInRegistrationOrder) {
  Net net;
  std::vector<std::string> names;
  for (auto& [name, p] : net.named_parameters()) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}));
  EXPECT_EQ(net.num_parameters(), 4 * 8 + 8 + 8 * 2 + 2);
  EXPECT_EQ(net.named_buffers().at(0).first, "running");
  for (auto& [name, p] : net.named_parameters()) EXPECT_TRUE(p.requires_grad()) << name;
}

TEST(Module, TrainAndEvalAreRecursive) {
  Net net;
  net.eval();
  EXPECT_FALSE(net.fc1->is_training());
  net.train();
  EXPECT_TRUE(net.fc2->is_training());
}

TEST(Module, StateDictRoundTripCopiesValues) {
  Net a, b;
  init::constant_(b.fc1->weight, 0.5);
  a.load_state_dict(b.state_dict());
  EXPECT_DOUBLE_EQ(a.fc1->weight.sum().item(), 0.5 * 32);
  // The module keeps its own storage: loading copies, it does not alias.
  init::constant_(b.fc1->weight, 2.0);
  EXPECT_DOUBLE_EQ(a.fc1->weight.sum().item(), 0.5 * 32);
}

TEST(Module, StrictLoadListsMissingUnexpectedAndMismatchedKeys) {
  Net net;
  StateDict s = net.state_dict();
  s.erase("fc2.bias");
  s["extra.weight"] = zeros({1});
  s["fc1.bias"] = zeros({7});
  const Tensor before = net.fc1->weight.clone();
  try {
    net.load_state_dict(s);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    const std::string m = e.what();
    EXPECT_TRUE(contains(m, "missing keys: fc2.bias")) << m;
    EXPECT_TRUE(contains(m, "unexpected keys: extra.weight")) << m;
    EXPECT_TRUE(contains(m, "fc1.bias (expected (8), got (7))")) << m;
  }
  // Nothing was loaded.
  EXPECT_DOUBLE_EQ((net.fc1->weight - before).sum().item(), 0.0);
  s["fc1.bias"] = zeros({8});
  net.load_state_dict(s, /*strict=*/false);  // missing and unexpected are fine now
  EXPECT_DOUBLE_EQ(net.fc1->bias.sum().item(), 0.0);
}

TEST(Module, DuplicateOrDottedNamesAreRefused) {
  struct Bad : Module {
    Bad() : Module("Bad") {
      register_parameter("w", zeros({1}));
      EXPECT_THROW(register_parameter("w", zeros({1})), ValueError);
      EXPECT_THROW(register_buffer("a.b", zeros({1})), ValueError);
    }
  } bad;
}

TEST(Layers, ShapesThroughTheStandardLayers) {
  Generator gen(1);
  Conv2dOptions same;
  same.padding = 1;
  Pool2dOptions pool;
  Sequential cnn({std::make_shared<Conv2d>(3, 8, 3, same, true, &gen), std::make_shared<ReLU>(),
                  std::make_shared<MaxPool2d>(pool), std::make_shared<Flatten>(),
                  std::make_shared<Linear>(8 * 4 * 4, 5, true, &gen)});
  EXPECT_EQ(cnn.forward(rand({2, 3, 8, 8}, {}, &gen)).shape(), (Shape{2, 5}));
  EXPECT_EQ(cnn.named_parameters().at(0).first, "0.weight");
  Embedding emb(10, 4, &gen);
  EXPECT_EQ(emb.forward(from_vector(std::vector<int64_t>{1, 2, 3}, {3})).shape(), (Shape{3, 4}));
  LayerNorm ln({4});
  EXPECT_EQ(ln.forward(rand({2, 4}, {}, &gen)).shape(), (Shape{2, 4}));
}

TEST(Layers, DropoutIsIdentityInEval) {
  Dropout d(0.5);
  Tensor x = ones({100});
  d.eval();
  EXPECT_DOUBLE_EQ(d.forward(x).sum().item(), 100.0);
  d.train();
  EXPECT_NE(d.forward(x).sum().item(), 100.0);
}

TEST(Transformer, CausalAttentionIgnoresTheFuture) {
  Generator gen(5);
  AttentionOptions o;
  o.d_model = 16;
  o.n_heads = 4;
  TransformerBlock block(o, &gen);
  Tensor x = randn({1, 6, 16}, {}, &gen);
  Tensor y1 = block.forward(x);
  // Change only the last position: outputs at earlier positions must not move.
  Tensor x2 = x.clone();
  x2.narrow(1, 5, 1).fill_(3.0);
  Tensor y2 = block.forward(x2);
  EXPECT_LT(max(abs(y1.narrow(1, 0, 5) - y2.narrow(1, 0, 5))).item(), 1e-6);
  EXPECT_GT(max(abs(y1.narrow(1, 5, 1) - y2.narrow(1, 5, 1))).item(), 1e-3);
  EXPECT_THROW(block.attn->forward(randn({1, 6, 8})), ShapeError);
}

TEST(Loss, MseMatchesHandComputation) {
  Tensor a = tensor({1, 2, 3}), b = tensor({1, 0, 0});
  EXPECT_NEAR(mse_loss(a, b).item(), (0 + 4 + 9) / 3.0, 1e-6);  // f32
  EXPECT_DOUBLE_EQ(MSELoss(Reduction::sum).forward(a, b).item(), 13.0);
  EXPECT_THROW(mse_loss(a, tensor({1, 2})), ShapeError);
}

TEST(CausalSelfAttention, DropoutInTrainingRunsOpByOpElseFused) {
  Generator gen(31);
  AttentionOptions o;
  o.d_model = 8;
  o.n_heads = 2;
  o.dropout = 0.5;
  CausalSelfAttention attn(o, &gen);
  Tensor x = randn({2, 5, 8}, DType::f32, &gen);
  attn.eval();  // no dropout: the fused self_attention
  Tensor fused = attn.forward(x);
  attn.train();  // dropout on the attention weights: the op-by-op path, whose output differs
  Tensor xr = x.detach().requires_grad_();
  Tensor dropped = attn.forward(xr);
  dropped.sum().backward();
  EXPECT_EQ(xr.grad().shape(), x.shape());
  EXPECT_GT(max(abs(sub(dropped, fused))).item<double>(), 1e-3);
  // With p = 0 the training forward is the fused one: the same numbers as eval.
  for (auto& [name, m] : attn.named_modules())
    if (auto* d = dynamic_cast<Dropout*>(m)) d->p = 0.0;
  EXPECT_EQ(max(abs(sub(attn.forward(x), fused))).item<double>(), 0.0);
}
