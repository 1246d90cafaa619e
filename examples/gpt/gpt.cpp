// gpt: a character-level GPT (2 blocks, d_model 128, 4 heads, context 64, vocabulary 256 by
// default) trained with AdamW on a text file read as tokens (a flat file of little-endian uint16).
//
//   gpt --data FILE     (tokens; any byte-level text converted to uint16 works)
//   gpt                 (generates a small synthetic text first)
//   gpt --device cuda --amp bf16 --d-model 768 --layers 12 --heads 12 --context 512 --batch-size 16
#include <algorithm>

#include "../common/example.h"

using namespace cohort;

namespace {

struct GptConfig {
  int64_t vocab = 256, context = 64, d_model = 128, n_heads = 4, n_layers = 2;
};

class Gpt : public Module {
 public:
  Gpt(GptConfig c, Generator* gen) : Module("Gpt"), config(c) {
    AttentionOptions attn;
    attn.d_model = c.d_model;
    attn.n_heads = c.n_heads;
    tok = register_module("tok", std::make_shared<Embedding>(c.vocab, c.d_model, gen));
    pos = register_module("pos", std::make_shared<Embedding>(c.context, c.d_model, gen));
    for (int64_t i = 0; i < c.n_layers; ++i)
      blocks.push_back(register_module("block" + std::to_string(i), std::make_shared<TransformerBlock>(attn, gen)));
    ln_f = register_module("ln_f", std::make_shared<LayerNorm>(Shape{c.d_model}));
    head = register_module("head", std::make_shared<Linear>(c.d_model, c.vocab, false, gen));
  }

  // tokens (B, T) i64 -> logits (B, T, vocab)
  Tensor forward(const Tensor& tokens) override {
    Tensor x = tok->forward(tokens) + pos->forward(positions(tokens.size(1), tokens.device()));  // (B, T, C)
    for (auto& block : blocks) x = block->forward(x);
    return head->forward(ln_f->forward(x));
  }

  GptConfig config;
  std::shared_ptr<Embedding> tok, pos;

  std::vector<std::shared_ptr<TransformerBlock>> blocks;
  std::shared_ptr<LayerNorm> ln_f;
  std::shared_ptr<Linear> head;

 private:
  // 0, 1, ..., T-1 (T) on `device`: made once, not copied to the GPU every step.
  const Tensor& positions(int64_t T, Device device) {
    if (!positions_.defined() || positions_.size(0) != T || positions_.device() != device)
      positions_ = arange(static_cast<double>(T), DType::i64).to(device);
    return positions_;
  }
  Tensor positions_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small character-level GPT on a token file."};
  examples::CommonArgs args;
  args.batch_size = 16;
  examples::add_common_flags(app, args);
  GptConfig config;
  app.add_option("--d-model", config.d_model, "model width")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--layers", config.n_layers, "transformer blocks")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--heads", config.n_heads, "attention heads (must divide --d-model)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--context", config.context, "tokens per example")->check(CLI::PositiveNumber)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    examples::setup(args);
    examples::Strategy strategy(args, &argc, &argv);
    COHORT_CHECK(config.d_model % config.n_heads == 0, ValueError, "--heads ", config.n_heads,
                 " must divide --d-model ", config.d_model, " (e.g. --d-model 768 --heads 12)");
    Generator gen(args.seed);

    std::string file = args.data;
    if (file.empty()) {
      // 200,000 characters, or enough for 8 batches of a large configuration.
      const int64_t chars = std::max<int64_t>(200000, 8 * args.batch_size * config.context * strategy.world());
      file = make_synthetic_text(examples::temp_dir("gpt"), chars, args.seed + 1).files[0];
    }
    auto data = std::make_shared<TokenDataset>(read_tokens(file), config.context);
    auto loader_ptr = strategy.loader(data, examples::loader_options(args));
    DataLoader& loader = *loader_ptr;
    COHORT_CHECK(loader.batches_per_epoch() > 0, ValueError, "the data holds ", data->size(), " examples of ",
                 config.context, " tokens, not one batch of ", args.batch_size,
                 " per rank; use a smaller --batch-size or --context, or more data");

    std::shared_ptr<Module> model = strategy.wrap([&] { return std::make_shared<Gpt>(config, &gen); });
    AdamOptions adam;
    adam.lr = args.lr > 0 ? args.lr : 3e-3;
    adam.weight_decay = 0.01;
    AdamW optimizer(model->named_parameters(), adam);
    const LossFn loss_fn = cross_entropy_loss();

    examples::Throughput throughput(args.warmup_steps, args.profile, strategy.device());
    double loss_value = 0;
    int64_t epoch = 0;
    loader.start_epoch(epoch);
    for (int64_t step = 1; step <= args.steps; ++step) {
      Batch batch;  // (B, T) inputs and next-token targets
      if (!loader.next(&batch)) {
        loader.start_epoch(++epoch);
        loader.next(&batch);
      }
      optimizer.zero_grad();
      loss_value = strategy.forward_backward(batch, loss_fn).loss;
      strategy.optimizer_step(optimizer, /*max_norm=*/1.0);
      throughput.step_done(step, batch.data.numel() * strategy.world());  // tokens
      strategy.step_done(step, args.warmup_steps);
      strategy.log_step(step, loss_value);
    }
    throughput.finish();
    strategy.finish(args.steps, loss_value, throughput, "tokens_per_second");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "gpt: %s\n", e.what());
    return 1;
  }
}
