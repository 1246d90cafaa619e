// cnn: conv3x3 32 -> relu -> maxpool -> conv3x3 64 -> relu -> maxpool -> fc 10 on CIFAR-10-format
// data, trained with fit() (progress bar on a terminal, log lines otherwise) and SGD with momentum.
//
//   cnn --data FILE[,FILE...]   (CIFAR-10 binary batches, e.g. data_batch_1.bin)
//   cnn                         (generates a small synthetic batch file first)
#include "../common/example.h"

using namespace cohort;

namespace {

// Records throughput from fit()'s batch ends.
class ThroughputCallback : public Callback {
 public:
  explicit ThroughputCallback(examples::Throughput& t) : t_(t) {}
  void on_batch_end(TrainState& s) override { t_.step_done(s.step, s.batch_size); }

 private:
  examples::Throughput& t_;
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
    Generator gen(args.seed);

    std::vector<std::string> files = split_paths(args.data);
    if (args.data.empty()) files = make_synthetic_cifar10(examples::temp_dir("cnn"), 2048, args.seed + 1).files;
    auto data = std::make_shared<TensorDataset>(read_cifar10(files));
    DataLoader loader(data, examples::loader_options(args));

    Conv2dOptions same;  // 3x3, stride 1, padding 1: keeps the spatial size
    same.padding = 1;
    Pool2dOptions halve;
    halve.kernel_size = 2;
    auto model = std::make_shared<Sequential>();
    model->push_back(std::make_shared<Conv2d>(3, 32, 3, same, true, &gen));    // (B, 32, 32, 32)
    model->push_back(std::make_shared<ReLU>());
    model->push_back(std::make_shared<MaxPool2d>(halve));                      // (B, 32, 16, 16)
    model->push_back(std::make_shared<Conv2d>(32, 64, 3, same, true, &gen));   // (B, 64, 16, 16)
    model->push_back(std::make_shared<ReLU>());
    model->push_back(std::make_shared<MaxPool2d>(halve));                      // (B, 64, 8, 8)
    model->push_back(std::make_shared<Flatten>());                             // (B, 4096)
    model->push_back(std::make_shared<Linear>(64 * 8 * 8, 10, true, &gen));    // (B, 10)
    SGDOptions sgd;
    sgd.lr = args.lr > 0 ? args.lr : 0.02;
    sgd.momentum = 0.9;
    SGD optimizer(model->named_parameters(), sgd);

    examples::Throughput throughput(args.warmup_steps, args.profile);
    FitOptions fit_options;
    fit_options.max_steps = args.steps;
    fit_options.log_every = args.log_every;
    fit_options.callbacks.push_back(std::make_shared<ThroughputCallback>(throughput));
    History history = fit(*model, cross_entropy_loss(), optimizer, loader, fit_options);

    throughput.finish();
    char extra[128];
    std::snprintf(extra, sizeof(extra), "\"samples_per_second\": %.1f, \"peak_rss_mib\": %.1f",
                  throughput.per_second(), examples::peak_rss_mib());
    examples::print_summary(history.steps, history.last_loss, examples::param_norm(*model), extra);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "cnn: %s\n", e.what());
    return 1;
  }
}
