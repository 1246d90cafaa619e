// cnn: conv3x3 32 -> relu -> maxpool -> conv3x3 64 -> relu -> maxpool -> fc 10 on CIFAR-10-format
// data, trained with fit() (progress bar on a terminal, log lines otherwise) and SGD with momentum.
//
//   cnn --data FILE[,FILE...]   (CIFAR-10 binary batches, e.g. data_batch_1.bin)
//   cnn                         (generates a small synthetic batch file first)
//   cnn --device cuda --amp f16
#include "../common/example.h"

using namespace cohort;

namespace {

// Records throughput from fit()'s batch ends.
class ThroughputCallback : public Callback {
 public:
  ThroughputCallback(examples::Throughput& t, examples::Strategy& strategy, int64_t warmup)
      : t_(t), strategy_(strategy), warmup_(warmup) {}
  void on_batch_end(TrainState& s) override {
    t_.step_done(s.step, s.batch_size * strategy_.world());
    strategy_.step_done(s.step, warmup_);
  }

 private:
  examples::Throughput& t_;
  examples::Strategy& strategy_;
  int64_t warmup_;
};

std::vector<std::string> split_paths(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = list.find(',', start);
    out.push_back(list.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small CNN on CIFAR-10-format data."};
  examples::CommonArgs args;
  args.batch_size = 64;
  examples::add_common_flags(app, args);
  CLI11_PARSE(app, argc, argv);
  try {
    examples::setup(args);
    examples::Strategy strategy(args, &argc, &argv);
    Generator gen(args.seed);

    std::vector<std::string> files = split_paths(args.data);
    if (args.data.empty()) files = make_synthetic_cifar10(examples::temp_dir("cnn"), 2048, args.seed + 1).files;
    auto data = std::make_shared<TensorDataset>(read_cifar10(files));
    auto loader_ptr = strategy.loader(data, examples::loader_options(args));

    Conv2dOptions same;  // 3x3, stride 1, padding 1: keeps the spatial size
    same.padding = 1;
    Pool2dOptions halve;
    halve.kernel_size = 2;
    std::shared_ptr<Module> model = strategy.wrap([&] {
      auto m = std::make_shared<Sequential>();
      m->push_back(std::make_shared<Conv2d>(3, 32, 3, same, true, &gen));    // (B, 32, 32, 32)
      m->push_back(std::make_shared<ReLU>());
      m->push_back(std::make_shared<MaxPool2d>(halve));                      // (B, 32, 16, 16)
      m->push_back(std::make_shared<Conv2d>(32, 64, 3, same, true, &gen));   // (B, 64, 16, 16)
      m->push_back(std::make_shared<ReLU>());
      m->push_back(std::make_shared<MaxPool2d>(halve));                      // (B, 64, 8, 8)
      m->push_back(std::make_shared<Flatten>());                             // (B, 4096)
      m->push_back(std::make_shared<Linear>(64 * 8 * 8, 10, true, &gen));    // (B, 10)
      return m;
    });
    SGDOptions sgd;
    sgd.lr = args.lr > 0 ? args.lr : 0.02;
    sgd.momentum = 0.9;
    SGD optimizer(model->named_parameters(), sgd);

    examples::Throughput throughput(args.warmup_steps, args.profile, strategy.device());
    FitOptions fit_options;
    fit_options.max_steps = args.steps;
    fit_options.log_every = args.log_every;
    fit_options.callbacks.push_back(std::make_shared<ThroughputCallback>(throughput, strategy, args.warmup_steps));
    const LossFn loss_fn = cross_entropy_loss();
    strategy.configure(fit_options, loss_fn);  // averaged metrics, rank 0 prints, mirrored's step, --amp
    History history = fit(*model, loss_fn, optimizer, *loader_ptr, fit_options);

    throughput.finish();
    strategy.finish(history.steps, history.last_loss, throughput, "samples_per_second");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "cnn: %s\n", e.what());
    return 1;
  }
}
