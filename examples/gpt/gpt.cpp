// gpt: a character-level GPT (2 blocks, d_model 128, 4 heads, context 64, vocabulary 256) trained
// with AdamW on a text file read as tokens (a flat file of little-endian uint16).
//
//   gpt --data FILE     (tokens; any byte-level text converted to uint16 works)
//   gpt                 (generates a small synthetic text first)
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
    const int64_t T = tokens.size(1);
    Tensor positions = arange(static_cast<double>(T), DType::i64);
    Tensor x = tok->forward(tokens) + pos->forward(positions);  // (B, T, C)
    for (auto& block : blocks) x = block->forward(x);
    return head->forward(ln_f->forward(x));
  }

  GptConfig config;
  std::shared_ptr<Embedding> tok, pos;
  std::vector<std::shared_ptr<TransformerBlock>> blocks;
  std::shared_ptr<LayerNorm> ln_f;
  std::shared_ptr<Linear> head;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small character-level GPT on a token file."};
  examples::CommonArgs args;
  args.batch_size = 16;
  examples::add_common_flags(app, args);
  CLI11_PARSE(app, argc, argv);
  try {
    examples::setup(args);
    examples::Strategy strategy(args, &argc, &argv);
    Generator gen(args.seed);
    GptConfig config;

    std::string file = args.data;
    if (file.empty()) file = make_synthetic_text(examples::temp_dir("gpt"), 200000, args.seed + 1).files[0];
    auto data = std::make_shared<TokenDataset>(read_tokens(file), config.context);
    auto loader_ptr = strategy.loader(data, examples::loader_options(args));
    DataLoader& loader = *loader_ptr;

    std::shared_ptr<Module> model = strategy.wrap([&] { return std::make_shared<Gpt>(config, &gen); });
    AdamOptions adam;
    adam.lr = args.lr > 0 ? args.lr : 3e-3;
    adam.weight_decay = 0.01;
    AdamW optimizer(model->named_parameters(), adam);
    const LossFn loss_fn = cross_entropy_loss();

    examples::Throughput throughput(args.warmup_steps, args.profile);
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
      clip_grad_norm(model->parameters(), 1.0);
      optimizer.step();
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
