// Ddp and Mirrored on the local backend (ranks as threads): buckets, gradient averaging, no_sync,
// unused parameters, differing models, and Mirrored against Ddp. The examples' end-to-end
// equality under mpirun and srun is in dp_examples.py and tests/slurm.
#include <gtest/gtest.h>

#include <cmath>

#include "cohort/core/core.h"
#include "cohort/parallel/comm/local_backend.h"
#include "cohort/parallel/ddp.h"
#include "cohort/parallel/mirrored.h"

namespace cohort::parallel {
namespace {

constexpr int64_t kIn = 6, kHidden = 40, kOut = 3;

std::shared_ptr<Sequential> make_mlp(uint64_t seed, int64_t hidden = kHidden) {
  Generator gen(seed);
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Linear>(kIn, hidden, true, &gen));
  m->push_back(std::make_shared<Tanh>());
  m->push_back(std::make_shared<Linear>(hidden, kOut, true, &gen));
  return m;
}

// A fixed data set: x (n, kIn), y (n,) class labels.
Batch data(int64_t n) {
  Generator gen(99);
  Batch b;
  b.data = randn({n, kIn}, {}, &gen);
  b.target = randint(0, kOut, {n}, DType::i64, &gen);
  return b;
}

Batch rows(const Batch& b, int64_t lo, int64_t hi) { return {b.data.slice(0, lo, hi), b.target.slice(0, lo, hi)}; }

// Every rank's parameters (by the inner model's names) after `steps` SGD steps.
using Params = std::map<std::string, Tensor>;

Params snapshot(const Module& m) {
  Params p;
  for (const auto& [name, t] : m.named_parameters()) p[name] = t.clone();
  return p;
}

void expect_close(const Params& a, const Params& b, double tol) {
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) {
    const double diff = max(abs(t - b.at(name))).item();
    EXPECT_LE(diff, tol) << name;
  }
}

SGDOptions sgd_options() {
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  return o;
}

// One rank, batch N*B, `steps` steps of SGD with momentum.
Params train_single(int world, int64_t batch, int steps) {
  auto m = make_mlp(1);
  SGD opt(m->named_parameters(), sgd_options());
  const Batch all = data(world * batch * steps);
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    const Batch b = rows(all, s * world * batch, (s + 1) * world * batch);
    cross_entropy(m->forward(b.data), b.target).backward();
    opt.step();
  }
  return snapshot(*m);
}

// Rank r of N takes the r-th block of B rows of each step's N*B (the same examples per step).
Batch shard(const Batch& all, int world, int rank, int64_t batch, int step) {
  const int64_t base = static_cast<int64_t>(step) * world * batch + rank * batch;
  return rows(all, base, base + batch);
}

TEST(Ddp, BucketsFollowReverseParameterOrderWithASmallFirstBucket) {
  LocalWorld::run(2, [](ProcessGroup& g) {
    DdpOptions o;
    o.first_bucket_bytes = 600;  // 2.bias + 2.weight are 492 bytes, so 0.bias (160) still joins
    o.bucket_bytes = 300 * 4;
    Ddp ddp(make_mlp(1), g, o);
    const auto layout = ddp.bucket_layout();
    ASSERT_EQ(layout.size(), 2u);
    EXPECT_EQ(layout[0], (std::vector<std::string>{"2.bias", "2.weight", "0.bias"}));
    EXPECT_EQ(layout[1], (std::vector<std::string>{"0.weight"}));
  });
}

TEST(Ddp, ConstructionBroadcastsRankZerosParameters) {
  LocalWorld::run(3, [](ProcessGroup& g) {
    auto m = make_mlp(100 + g.rank());  // different initial weights per rank
    Ddp ddp(m, g);
    const Params mine = snapshot(*m);
    expect_close(mine, snapshot(*make_mlp(100)), 0.0);
  });
}

class DdpRanks : public ::testing::TestWithParam<int> {};

TEST_P(DdpRanks, NRanksTimesBatchEqualsOneRankTimesNB) {
  const int world = GetParam();
  const int64_t batch = 5;
  const int steps = 4;
  const Params expected = train_single(world, batch, steps);
  for (bool overlap : {true, false}) {
    LocalWorld::run(world, [&](ProcessGroup& g) {
      auto m = make_mlp(1);
      DdpOptions o;
      o.overlap = overlap;
      o.first_bucket_bytes = 64;  // several buckets, so several all-reduces per step
      o.bucket_bytes = 128;
      auto ddp = std::make_shared<Ddp>(m, g, o);
      SGD opt(ddp->named_parameters(), sgd_options());
      const Batch all = data(world * batch * steps);
      for (int s = 0; s < steps; ++s) {
        opt.zero_grad();
        const Batch b = shard(all, world, g.rank(), batch, s);
        cross_entropy(ddp->forward(b.data), b.target).backward();
        opt.step();
      }
      EXPECT_EQ(ddp->stats().steps, steps);
      EXPECT_GT(ddp->stats().buckets, 2);
      expect_close(snapshot(*m), expected, 2e-6);  // float32, only the order of additions differs
    });
  }
}

INSTANTIATE_TEST_SUITE_P(World, DdpRanks, ::testing::Values(1, 2, 3, 4));

TEST(Ddp, NoSyncAccumulatesMicroBatchesLikeOneLargeBatch) {
  // 2 ranks, M = 3 micro-batches of B = 4 each, the losses scaled by 1/M: the same gradient as one
  // step of 2 x 12 rows.
  const int world = 2, micro = 3;
  const int64_t batch = 4;
  const Params expected = train_single(world, batch * micro, 1);
  LocalWorld::run(world, [&](ProcessGroup& g) {
    auto m = make_mlp(1);
    auto ddp = std::make_shared<Ddp>(m, g);
    SGD opt(ddp->named_parameters(), sgd_options());
    const Batch all = data(world * batch * micro);
    const Batch mine = shard(all, world, g.rank(), batch * micro, 0);
    opt.zero_grad();
    for (int k = 0; k < micro; ++k) {
      const Batch b = rows(mine, k * batch, (k + 1) * batch);
      auto step_loss = [&] { (cross_entropy(ddp->forward(b.data), b.target) * (1.0 / micro)).backward(); };
      if (k < micro - 1) {
        auto guard = ddp->no_sync();
        step_loss();
      } else {
        step_loss();
      }
      EXPECT_EQ(ddp->stats().steps, k < micro - 1 ? 0 : 1);  // only the last backward communicated
    }
    opt.step();
    expect_close(snapshot(*m), expected, 2e-6);
  });
}

// A model with a branch that forward() uses only when told to.
class Branchy : public Module {
 public:
  explicit Branchy(bool use_extra) : Module("Branchy"), use_extra_(use_extra) {
    Generator gen(5);
    main = register_module("main", std::make_shared<Linear>(kIn, kOut, true, &gen));
    extra = register_module("extra", std::make_shared<Linear>(kIn, kOut, true, &gen));
  }
  Tensor forward(const Tensor& x) override { return use_extra_ ? main->forward(x) + extra->forward(x) : main->forward(x); }
  std::shared_ptr<Linear> main, extra;
  bool use_extra_;
};

TEST(Ddp, AParameterWithoutGradientIsNamedInsteadOfHanging) {
  LocalWorld::run(2, [](ProcessGroup& g) {
    auto ddp = std::make_shared<Ddp>(std::make_shared<Branchy>(false), g);
    const Batch b = data(4);
    try {
      cross_entropy(ddp->forward(b.data), b.target).backward();
      ADD_FAILURE() << "expected an error";
    } catch (const AutogradError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("module.extra.weight"), std::string::npos) << what;
      EXPECT_NE(what.find("module.extra.bias"), std::string::npos) << what;
      EXPECT_NE(what.find("find_unused_parameters"), std::string::npos) << what;
      EXPECT_EQ(what.find("module.main."), std::string::npos) << what;
    }
  });
}

TEST(Ddp, FindUnusedParametersReducesWhatSomeRankUsed) {
  // Rank 0 uses the extra branch, rank 1 does not: the extra gradients are rank 0's / 2. With no
  // rank using it, the gradient stays undefined.
  LocalWorld::run(2, [](ProcessGroup& g) {
    auto model = std::make_shared<Branchy>(g.rank() == 0);
    DdpOptions o;
    o.find_unused_parameters = true;
    auto ddp = std::make_shared<Ddp>(model, g, o);
    const Batch b = data(4);
    Tensor extra_grad_rank0;
    {
      // Rank 0's own gradient for the extra branch, computed on a copy.
      auto copy = std::make_shared<Branchy>(true);
      copy->load_state_dict(model->state_dict());
      cross_entropy(copy->forward(b.data), b.target).backward();
      extra_grad_rank0 = copy->extra->named_parameters()[0].second.grad();
    }
    cross_entropy(ddp->forward(b.data), b.target).backward();
    const Tensor got = model->extra->named_parameters()[0].second.grad();
    ASSERT_TRUE(got.defined());
    const double diff = max(abs(got - extra_grad_rank0 * 0.5)).item();
    EXPECT_LE(diff, 1e-6);
  });
  LocalWorld::run(2, [](ProcessGroup& g) {
    auto model = std::make_shared<Branchy>(false);
    DdpOptions o;
    o.find_unused_parameters = true;
    auto ddp = std::make_shared<Ddp>(model, g, o);
    const Batch b = data(4);
    cross_entropy(ddp->forward(b.data), b.target).backward();
    EXPECT_FALSE(model->extra->named_parameters()[0].second.grad().defined());
    EXPECT_TRUE(model->main->named_parameters()[0].second.grad().defined());
  });
}

TEST(Ddp, ADifferentModelOnOneRankIsReportedWithTheFirstDifference) {
  LocalWorld::run(3, [](ProcessGroup& g) {
    try {
      Ddp ddp(make_mlp(1, g.rank() == 2 ? 41 : kHidden), g);
      ADD_FAILURE() << "expected an error on rank " << g.rank();
    } catch (const ValueError& e) {
      const std::string what = e.what();
      if (g.rank() == 2) {
        EXPECT_NE(what.find("entry #0: rank 0 has 'parameter 0.weight f32 (40, 6)', this rank has "
                            "'parameter 0.weight f32 (41, 6)'"),
                  std::string::npos)
            << what;
      } else {
        EXPECT_NE(what.find("ranks 2 differ"), std::string::npos) << what;
      }
    }
  });
}

TEST(Ddp, ForwardAgainWithoutBackwardIsAnError) {
  LocalWorld::run(1, [](ProcessGroup& g) {
    auto ddp = std::make_shared<Ddp>(make_mlp(1), g);
    const Batch b = data(4);
    (void)ddp->forward(b.data);
    EXPECT_THROW((void)ddp->forward(b.data), AutogradError);
  });
}

TEST(Mirrored, NReplicasEqualDdpOnNRanksAndOneRankWithTheWholeBatch) {
  const int n = 3;
  const int64_t batch = 5;
  const int steps = 3;
  const Params expected = train_single(n, batch, steps);
  Mirrored mirrored([] { return make_mlp(1); }, [] {
    MirroredOptions o;
    o.replicas = n;
    return o;
  }());
  EXPECT_EQ(mirrored.replicas(), n);
  SGD opt(mirrored.model().named_parameters(), sgd_options());
  const Batch all = data(n * batch * steps);
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    const StepOutput out = mirrored.forward_backward(rows(all, s * n * batch, (s + 1) * n * batch), cross_entropy_loss());
    EXPECT_EQ(out.output.size(0), n * batch);
    opt.step();
  }
  expect_close(snapshot(mirrored.model()), expected, 2e-6);
}

TEST(Mirrored, UnevenSplitsWeighRowsNotReplicas) {
  // 7 rows over 3 replicas (2, 2, 3): still the gradient of the 7-row mean loss.
  const Params expected = train_single(1, 7, 1);
  MirroredOptions o;
  o.replicas = 3;
  Mirrored mirrored([] { return make_mlp(1); }, o);
  SGD opt(mirrored.model().named_parameters(), sgd_options());
  opt.zero_grad();
  mirrored.forward_backward(data(7), cross_entropy_loss());
  opt.step();
  expect_close(snapshot(mirrored.model()), expected, 2e-6);
}

TEST(Mirrored, FitTrainsThroughStepFn) {
  MirroredOptions o;
  o.replicas = 2;
  Mirrored mirrored([] { return make_mlp(1); }, o);
  SGDOptions so;
  so.lr = 0.1;
  SGD opt(mirrored.model().named_parameters(), so);
  const Batch all = data(64);
  auto ds = std::make_shared<TensorDataset>(all.data, all.target);
  DataLoaderOptions lo;
  lo.batch_size = 16;
  DataLoader loader(ds, lo);
  FitOptions fo;
  fo.epochs = 3;
  fo.verbose = false;
  const LossFn loss = cross_entropy_loss();
  fo.forward_backward = mirrored.step_fn(loss);
  const Metrics before = evaluate(mirrored.model(), loss, loader);
  History h = fit(mirrored.model(), loss, opt, loader, fo);
  const Metrics after = evaluate(mirrored.model(), loss, loader);
  EXPECT_EQ(h.steps, 12);
  EXPECT_LT(after.at("loss"), before.at("loss"));
}

}  // namespace
}  // namespace cohort::parallel
