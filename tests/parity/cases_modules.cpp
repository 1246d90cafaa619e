// Parity cases for the nn modules: Linear, Conv2d, LayerNorm, Embedding, the losses, the attention
// and transformer blocks, Sequential stacks and a two-block GPT.
//
// A case builds the cohort module (random weights from the case's generator), registers its input
// as "x" and every parameter under its dotted name (c.parameters), and runs forward; the driver
// runs backward. torch_modules.py builds the torch module of the same structure, checks that
// cohort's state_dict keys are torch's (after an explicit name map where they differ), loads the
// values and compares the output, the input gradient and every parameter gradient by name.
#include <memory>
#include <sstream>
#include <tuple>

#include "parity_case.h"

namespace cohort::parity {

namespace {

// LayerNorm starts at weight 1, bias 0, which would hide a mistake in how they are applied.
void randomize_layer_norm(LayerNorm& ln, Generator* gen) {
  init::normal_(ln.weight, 1.0, 0.3, gen);
  init::normal_(ln.bias, 0.0, 0.3, gen);
}

// One layer of a Sequential from a one-line spec that torch_modules.py parses the same way:
// "linear IN OUT", "conv2d IN OUT K STRIDE PADDING", "layer_norm C", "max_pool2d K",
// "avg_pool2d K", "flatten", "relu", "gelu", "gelu_tanh", "tanh", "dropout" (p = 0).
std::shared_ptr<Module> layer_from_spec(const std::string& spec, Generator* gen) {
  std::istringstream in(spec);
  std::string kind;
  in >> kind;
  int64_t a = 0, b = 0, k = 0, stride = 1, padding = 0;
  if (kind == "linear") {
    in >> a >> b;
    return std::make_shared<Linear>(a, b, true, gen);
  }
  if (kind == "conv2d") {
    in >> a >> b >> k >> stride >> padding;
    Conv2dOptions o;
    o.stride = stride;
    o.padding = padding;
    return std::make_shared<Conv2d>(a, b, k, o, true, gen);
  }
  if (kind == "layer_norm") {
    in >> a;
    auto ln = std::make_shared<LayerNorm>(Shape{a});
    randomize_layer_norm(*ln, gen);
    return ln;
  }
  if (kind == "max_pool2d" || kind == "avg_pool2d") {
    in >> k;
    Pool2dOptions o;
    o.kernel_size = k;
    if (kind == "max_pool2d") return std::make_shared<MaxPool2d>(o);
    return std::make_shared<AvgPool2d>(o);
  }
  if (kind == "flatten") return std::make_shared<Flatten>();
  if (kind == "relu") return std::make_shared<ReLU>();
  if (kind == "gelu") return std::make_shared<GELU>();
  if (kind == "gelu_tanh") return std::make_shared<GELU>("tanh");
  if (kind == "tanh") return std::make_shared<Tanh>();
  if (kind == "dropout") return std::make_shared<Dropout>(0.0, gen);
  COHORT_THROW(ValueError, "cases_modules: unknown layer spec '", spec, "'");
}

// Registers x and m's parameters, runs m forward on x.
void run_module(CaseBuilder& c, Module& m, const Tensor& x_value) {
  Tensor x = c.input("x", x_value);  // integer indices are registered without a gradient
  c.parameters(m);
  c.output(m.forward(x));
}

void run_loss(CaseBuilder& c, Loss& loss, const Tensor& input, const Tensor& target) {
  Tensor in = c.input("input", input);
  Tensor t = c.input("target", target);  // mse_loss: differentiable in the target too
  c.parameters(loss);
  c.output(loss.forward(in, t));
}

const char* reduction_name(Reduction r) {
  return r == Reduction::mean ? "mean" : r == Reduction::sum ? "sum" : "none";
}

// torch_models.py's Gpt at a small size: token and position embeddings, a Sequential of
// TransformerBlocks, a final LayerNorm and a bias-free head.
class TinyGpt : public Module {
 public:
  TinyGpt(int64_t vocab, int64_t context, AttentionOptions o, int64_t layers, Generator* gen) : Module("TinyGpt") {
    tok = register_module("tok", std::make_shared<Embedding>(vocab, o.d_model, gen));
    pos = register_module("pos", std::make_shared<Embedding>(context, o.d_model, gen));
    blocks = register_module("blocks", std::make_shared<Sequential>());
    for (int64_t i = 0; i < layers; ++i) {
      auto block = blocks->push_back(std::make_shared<TransformerBlock>(o, gen));
      randomize_layer_norm(*block->ln1, gen);
      randomize_layer_norm(*block->ln2, gen);
    }
    ln_f = register_module("ln_f", std::make_shared<LayerNorm>(Shape{o.d_model}));
    randomize_layer_norm(*ln_f, gen);
    head = register_module("head", std::make_shared<Linear>(o.d_model, vocab, false, gen));
  }
  Tensor forward(const Tensor& idx) override {  // idx (B, T) -> logits (B, T, vocab)
    Tensor positions = arange(static_cast<double>(idx.size(1)), DType::i64);
    Tensor x = tok->forward(idx) + pos->forward(positions);  // (B, T, C)
    return head->forward(ln_f->forward(blocks->forward(x)));
  }
  std::shared_ptr<Embedding> tok, pos;
  std::shared_ptr<Sequential> blocks;
  std::shared_ptr<LayerNorm> ln_f;
  std::shared_ptr<Linear> head;
};

}  // namespace

void add_module_cases(CaseList& cases) {
  // ---- Linear ----
  for (auto [name, bias, shape] : {std::tuple<const char*, bool, Shape>{"module_linear", true, {4, 5}},
                                   {"module_linear_no_bias_3d", false, {2, 3, 5}}}) {
    cases.push_back({name, "module", [bias = bias, shape = shape](CaseBuilder& c) {
                       c.attr("module", "linear");
                       c.attr("in_features", 5);
                       c.attr("out_features", 3);
                       c.attr("bias", bias);
                       Linear m(5, 3, bias, &c.gen());
                       run_module(c, m, c.randn(shape));
                     }});
  }

  // ---- Conv2d ----
  for (auto [name, in, out, kernel, o, bias, shape] :
       {std::tuple<const char*, int64_t, int64_t, int64_t, Conv2dOptions, bool, Shape>{
            "module_conv2d_stride_padding", 3, 4, 3, {2, 1, 1, 1}, true, {2, 3, 7, 7}},
        {"module_conv2d_dilation_groups_no_bias", 4, 6, 3, {1, 2, 2, 2}, false, {2, 4, 8, 8}}}) {
    cases.push_back({name, "module", [in = in, out = out, kernel = kernel, o = o, bias = bias, shape = shape](CaseBuilder& c) {
                       c.attr("module", "conv2d");
                       c.attr("in_channels", in);
                       c.attr("out_channels", out);
                       c.attr("kernel_size", kernel);
                       c.attr("stride", o.stride);
                       c.attr("padding", o.padding);
                       c.attr("dilation", o.dilation);
                       c.attr("groups", o.groups);
                       c.attr("bias", bias);
                       Conv2d m(in, out, kernel, o, bias, &c.gen());
                       run_module(c, m, c.randn(shape));
                     }});
  }

  // ---- LayerNorm ----
  for (auto [name, normalized, eps, affine, shape] :
       {std::tuple<const char*, Shape, double, bool, Shape>{"module_layer_norm", {6}, 1e-5, true, {3, 4, 6}},
        {"module_layer_norm_2d", {3, 4}, 1e-3, true, {2, 3, 4}},
        {"module_layer_norm_no_affine", {5}, 1e-5, false, {4, 5}}}) {
    cases.push_back({name, "module", [normalized = normalized, eps = eps, affine = affine, shape = shape](CaseBuilder& c) {
                       c.attr("module", "layer_norm");
                       c.attr("normalized_shape", std::vector<int64_t>(normalized.begin(), normalized.end()));
                       c.attr("eps", eps);
                       c.attr("elementwise_affine", affine);
                       LayerNorm m(normalized, eps, affine);
                       if (affine) randomize_layer_norm(m, &c.gen());
                       run_module(c, m, c.randn(shape) * 2.0 + 0.5);
                     }});
  }

  // ---- Embedding ----
  cases.push_back({"module_embedding", "module", [](CaseBuilder& c) {
                     c.attr("module", "embedding");
                     c.attr("num_embeddings", 10);
                     c.attr("embedding_dim", 4);
                     Embedding m(10, 4, &c.gen());
                     run_module(c, m, c.randint(0, 10, {3, 5}));  // repeated indices likely
                   }});

  // ---- losses ----
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    cases.push_back({std::string("module_mse_loss_") + reduction_name(r), "module", [r](CaseBuilder& c) {
                       c.attr("module", "mse_loss");
                       c.attr("reduction", reduction_name(r));
                       MSELoss m(r);
                       run_loss(c, m, c.randn({4, 3}), c.randn({4, 3}));
                     }});
  }
  for (auto [name, r, ignore_index] :
       {std::tuple<const char*, Reduction, int64_t>{"module_cross_entropy_loss", Reduction::mean, -100},
        {"module_cross_entropy_loss_sum", Reduction::sum, -100},
        {"module_cross_entropy_loss_ignore_index", Reduction::mean, 1}}) {
    cases.push_back({name, "module", [r = r, ignore_index = ignore_index](CaseBuilder& c) {
                       c.attr("module", "cross_entropy_loss");
                       c.attr("reduction", reduction_name(r));
                       c.attr("ignore_index", ignore_index);
                       CrossEntropyOptions o;
                       o.reduction = r;
                       o.ignore_index = ignore_index;
                       CrossEntropyLoss m(o);
                       Tensor target = c.randint(0, 4, {8});
                       target.narrow(0, 0, 1).fill_(0.0);  // at least one target is not ignored
                       run_loss(c, m, c.randn({8, 4}) * 2.0, target);
                     }});
  }

  // ---- attention and transformer blocks: d_model 16, 4 heads, (B, T) = (2, 6) ----
  AttentionOptions ao;
  ao.d_model = 16;
  ao.n_heads = 4;
  ao.dropout = 0.0;
  cases.push_back({"module_causal_self_attention", "module", [ao](CaseBuilder& c) {
                     c.attr("module", "attention");
                     c.attr("d_model", ao.d_model);
                     c.attr("n_heads", ao.n_heads);
                     CausalSelfAttention m(ao, &c.gen());
                     run_module(c, m, c.randn({2, 6, ao.d_model}));
                   }});
  cases.push_back({"module_transformer_block", "module", [ao](CaseBuilder& c) {
                     c.attr("module", "block");
                     c.attr("d_model", ao.d_model);
                     c.attr("n_heads", ao.n_heads);
                     TransformerBlock m(ao, &c.gen());
                     randomize_layer_norm(*m.ln1, &c.gen());
                     randomize_layer_norm(*m.ln2, &c.gen());
                     run_module(c, m, c.randn({2, 6, ao.d_model}));
                   }});
  cases.push_back({"module_tiny_gpt", "module", [ao](CaseBuilder& c) {
                     c.attr("module", "gpt");
                     c.attr("vocab", 11);
                     c.attr("context", 8);
                     c.attr("d_model", ao.d_model);
                     c.attr("n_heads", ao.n_heads);
                     c.attr("layers", 2);
                     TinyGpt m(11, 8, ao, 2, &c.gen());
                     run_module(c, m, c.randint(0, 11, {2, 6}));
                   }});

  // ---- Sequential stacks ----
  for (auto [name, layers, shape] :
       {std::tuple<const char*, std::vector<std::string>, Shape>{
            "module_sequential_mlp",
            {"linear 8 16", "relu", "linear 16 16", "gelu", "linear 16 16", "tanh", "linear 16 4"},
            {5, 8}},
        {"module_sequential_mlp_layer_norm",
         {"linear 8 16", "layer_norm 16", "gelu_tanh", "dropout", "linear 16 3"},
         {2, 4, 8}},
        {"module_sequential_cnn",
         {"conv2d 3 4 3 1 1", "relu", "max_pool2d 2", "conv2d 4 6 3 1 1", "tanh", "avg_pool2d 2", "flatten",
          "linear 24 5"},
         {2, 3, 8, 8}}}) {
    cases.push_back({name, "module", [layers = layers, shape = shape](CaseBuilder& c) {
                       c.attr("module", "sequential");
                       c.attr("layers", layers);
                       Sequential m;
                       for (const std::string& spec : layers) m.push_back(layer_from_spec(spec, &c.gen()));
                       run_module(c, m, c.randn(shape));
                     }});
  }
}

}  // namespace cohort::parity
