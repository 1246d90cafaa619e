#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "cohort/core/core.h"

using namespace cohort;

namespace {
std::string fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("cohort-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

// A linearly separable 2-class problem.
std::shared_ptr<TensorDataset> blobs(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor y = randint(0, 2, {n}, DType::i64, &gen);
  Tensor x = randn({n, 2}, {}, &gen) * 0.3 + (y.to(DType::f32).reshape({n, 1}) * 2.0 - 1.0);
  return std::make_shared<TensorDataset>(x, y);
}
}  // namespace

TEST(Serialize, RoundTripAllDtypesAndDetectCorruption) {
  const std::string dir = fresh_dir("serialize");
  StateDict s;
  s["a"] = randn({3, 4});
  s["b"] = arange(5.0, TensorOptions(DType::i64));
  s["c"] = randn({2}).to(DType::bf16);
  s["d"] = scalar_tensor(1.0, DType::boolean);
  save(s, dir + "/x.bin");
  StateDict r = load(dir + "/x.bin");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_DOUBLE_EQ((r["a"] - s["a"]).to(DType::f64).sum().item(), 0.0);
  EXPECT_EQ(r["c"].dtype(), DType::bf16);
  EXPECT_EQ(r["b"].select(0, 4).item<int64_t>(), 4);
  // Flip one data byte: the checksum names the tensor.
  {
    std::fstream f(dir + "/x.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(-3, std::ios::end);
    f.put('\x7f');
  }
  try {
    load(dir + "/x.bin");
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("checksum"), std::string::npos) << e.what();
  }
  std::filesystem::resize_file(dir + "/x.bin", 20);
  EXPECT_THROW(load(dir + "/x.bin"), ValueError);
  std::filesystem::remove_all(dir);
}

TEST(Fit, LossFallsAndCallbacksRunInOrder) {
  struct Recorder : Callback {
    std::vector<std::string> events;
    void on_train_begin(TrainState&) override { events.push_back("train_begin"); }
    void on_epoch_begin(TrainState&) override { events.push_back("epoch_begin"); }
    void on_batch_end(TrainState&) override {
      if (events.back() != "batch") events.push_back("batch");
    }
    void on_epoch_end(TrainState& s) override {
      events.push_back("epoch_end");
      EXPECT_TRUE(s.epoch_metrics.count("val_loss"));
    }
    void on_train_end(TrainState&) override { events.push_back("train_end"); }
  };
  Generator gen(2);
  Sequential model({std::make_shared<Linear>(2, 8, true, &gen), std::make_shared<Tanh>(),
                    std::make_shared<Linear>(8, 2, true, &gen)});
  DataLoaderOptions lo;
  lo.batch_size = 16;
  lo.shuffle = true;
  DataLoader train(blobs(256, 1), lo), val(blobs(64, 2), lo);
  SGDOptions so;
  so.lr = 0.1;
  SGD opt(model.named_parameters(), so);
  const std::string dir = fresh_dir("fit");
  auto recorder = std::make_shared<Recorder>();
  auto ckpt = std::make_shared<ModelCheckpoint>(dir, 10, 2);
  FitOptions fo;
  fo.epochs = 2;
  fo.validation = &val;
  fo.verbose = false;
  fo.callbacks = {recorder, ckpt, std::make_shared<MetricsLogger>(dir + "/log.csv", MetricsLogger::Format::csv, 8)};
  History h = fit(model, cross_entropy_loss(), opt, train, fo);
  EXPECT_EQ(h.steps, 32);
  ASSERT_EQ(h.epochs.size(), 2u);
  EXPECT_LT(h.epochs[1].at("loss"), h.epochs[0].at("loss"));
  EXPECT_GT(h.epochs[1].at("val_accuracy"), 0.9);
  EXPECT_EQ(recorder->events, (std::vector<std::string>{"train_begin", "epoch_begin", "batch", "epoch_end",
                                                         "epoch_begin", "batch", "epoch_end", "train_end"}));
  // Checkpoints at steps 10, 20, 30 and the end (32); only the last two kept.
  EXPECT_FALSE(std::filesystem::exists(dir + "/step_00000020.model"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/step_00000030.model"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/step_00000032.model"));
  Sequential copy({std::make_shared<Linear>(2, 8), std::make_shared<Tanh>(), std::make_shared<Linear>(8, 2)});
  copy.load_state_dict(load(dir + "/step_00000032.model"));
  EXPECT_DOUBLE_EQ(sum(abs(copy.parameters()[0] - model.parameters()[0])).item(), 0.0);
  std::ifstream log(dir + "/log.csv");
  std::string header;
  std::getline(log, header);
  EXPECT_EQ(header.rfind("kind,epoch,step", 0), 0u);
  std::filesystem::remove_all(dir);
}

TEST(Fit, EarlyStoppingStopsWhenValidationStallsAndMaxStepsLimits) {
  Sequential model({std::make_shared<Linear>(2, 2)});
  DataLoaderOptions lo;
  lo.batch_size = 32;
  DataLoader train(blobs(64, 3), lo), val(blobs(32, 4), lo);
  SGDOptions so;
  so.lr = 0.0;  // nothing changes: validation loss never improves
  SGD opt(model.named_parameters(), so);
  auto early = std::make_shared<EarlyStopping>("val_loss", 2);
  FitOptions fo;
  fo.epochs = 10;
  fo.validation = &val;
  fo.verbose = false;
  fo.callbacks = {early};
  History h = fit(model, cross_entropy_loss(), opt, train, fo);
  EXPECT_EQ(h.epochs.size(), 3u);  // best at epoch 0, no improvement at 1 and 2
  EXPECT_EQ(early->stopped_epoch(), 2);
  FitOptions limited;
  limited.max_steps = 3;
  limited.verbose = false;
  EXPECT_EQ(fit(model, cross_entropy_loss(), opt, train, limited).steps, 3);
}
