// mlp: a 784-1024-1024-10 perceptron with ReLU on MNIST-format data, trained with an explicit loop
// (forward, loss, backward, step) and SGD with momentum.
//
//   mlp --data DIR      (DIR holds train-images-idx3-ubyte and train-labels-idx1-ubyte)
//   mlp                 (generates a small synthetic set in that format first)
//   mlp --device cuda --amp bf16
#include "../common/example.h"

using namespace cohort;

int main(int argc, char** argv) {
  CLI::App app{"Train a 784-1024-1024-10 MLP on MNIST-format data."};
  examples::CommonArgs args;
  args.batch_size = 128;
  examples::add_common_flags(app, args);
  CLI11_PARSE(app, argc, argv);
  try {
    examples::setup(args);
    examples::Strategy strategy(args, &argc, &argv);
    Generator gen(args.seed);

    std::string dir = args.data;
    if (dir.empty()) {
      dir = examples::temp_dir("mlp");
      make_synthetic_mnist(dir, 4096, args.seed + 1);
    }
    TensorDataset data = read_mnist(dir + "/train-images-idx3-ubyte", dir + "/train-labels-idx1-ubyte");
    // The perceptron takes flat images: (N, 1, 28, 28) -> (N, 784).
    auto flat = std::make_shared<TensorDataset>(data.data().reshape({data.size(), -1}), data.targets());
    auto loader_ptr = strategy.loader(flat, examples::loader_options(args));
    DataLoader& loader = *loader_ptr;

    std::shared_ptr<Module> model = strategy.wrap([&] {
      auto m = std::make_shared<Sequential>();
      m->push_back(std::make_shared<Linear>(784, 1024, true, &gen));
      m->push_back(std::make_shared<ReLU>());
      m->push_back(std::make_shared<Linear>(1024, 1024, true, &gen));
      m->push_back(std::make_shared<ReLU>());
      m->push_back(std::make_shared<Linear>(1024, 10, true, &gen));
      return m;
    });
    const LossFn loss_fn = cross_entropy_loss();
    SGDOptions sgd;
    sgd.lr = args.lr > 0 ? args.lr : 0.05;
    sgd.momentum = 0.9;
    SGD optimizer(model->named_parameters(), sgd);

    examples::Throughput throughput(args.warmup_steps, args.profile, strategy.device());
    double loss_value = 0;
    int64_t epoch = 0;
    loader.start_epoch(epoch);
    for (int64_t step = 1; step <= args.steps; ++step) {
      Batch batch;
      if (!loader.next(&batch)) {
        loader.start_epoch(++epoch);
        loader.next(&batch);
      }
      optimizer.zero_grad();
      loss_value = strategy.forward_backward(batch, loss_fn).loss;  // logits (B, 10)
      strategy.optimizer_step(optimizer);
      throughput.step_done(step, batch.data.size(0) * strategy.world());
      strategy.step_done(step, args.warmup_steps);
      strategy.log_step(step, loss_value);
    }
    throughput.finish();
    strategy.finish(args.steps, loss_value, throughput, "samples_per_second");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "mlp: %s\n", e.what());
    return 1;
  }
}
