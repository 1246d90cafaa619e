#include "cohort/core/nn/transformer.h"

#include <cmath>

#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/indexing.h"
#include "cohort/core/ops/linalg.h"
#include "cohort/core/ops/nn.h"

namespace cohort {

CausalSelfAttention::CausalSelfAttention(AttentionOptions opts, Generator* gen)
    : Module("CausalSelfAttention"), options(opts) {
  COHORT_CHECK(opts.n_heads > 0 && opts.d_model % opts.n_heads == 0, ValueError, "CausalSelfAttention: d_model ",
               opts.d_model, " must be divisible by n_heads ", opts.n_heads);
  qkv = register_module("qkv", std::make_shared<Linear>(opts.d_model, 3 * opts.d_model, true, gen));
  proj = register_module("proj", std::make_shared<Linear>(opts.d_model, opts.d_model, true, gen));
  attn_dropout = register_module("attn_dropout", std::make_shared<Dropout>(opts.dropout, gen));
  resid_dropout = register_module("resid_dropout", std::make_shared<Dropout>(opts.dropout, gen));
}

Tensor CausalSelfAttention::forward(const Tensor& x) {
  COHORT_CHECK(x.dim() == 3 && x.size(2) == options.d_model, ShapeError,
               "CausalSelfAttention: expected input (B, T, ", options.d_model, "), got ", x.shape_str());
  const int64_t B = x.size(0), T = x.size(1), C = options.d_model, H = options.n_heads, D = C / H;
  Tensor qkv_out = qkv->forward(x);                                   // (B, T, 3C)
  Tensor y;
  if (attn_dropout->p > 0 && is_training()) {
    // Dropout on the attention weights needs them as a tensor: the op-by-op form.
    std::vector<Tensor> parts = split(qkv_out, C, 2);  // 3 x (B, T, C)
    auto heads = [&](const Tensor& t) { return t.reshape({B, T, H, D}).permute({0, 2, 1, 3}); };
    Tensor q = heads(parts[0]), k = heads(parts[1]), v = heads(parts[2]);  // (B, H, T, D)
    Tensor att = matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(D)));  // (B, H, T, T)
    // Position t may attend to positions <= t: mask the strict upper triangle.
    Tensor rows = arange(static_cast<double>(T), DType::i64).reshape({T, 1});
    Tensor cols = arange(static_cast<double>(T), DType::i64).reshape({1, T});
    att = masked_fill(att, gt(cols, rows), -INFINITY);
    y = matmul(attn_dropout->forward(softmax(att, -1)), v);  // (B, H, T, D)
    y = y.permute({0, 2, 1, 3}).reshape({B, T, C});
  } else {
    y = self_attention(qkv_out, H, /*is_causal=*/true);  // one fused op, (B, T, C)
  }
  return resid_dropout->forward(proj->forward(y));
}

TransformerBlock::TransformerBlock(AttentionOptions opts, Generator* gen) : Module("TransformerBlock") {
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(Shape{opts.d_model}));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(opts, gen));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(Shape{opts.d_model}));
  fc = register_module("fc", std::make_shared<Linear>(opts.d_model, 4 * opts.d_model, true, gen));
  fc_proj = register_module("fc_proj", std::make_shared<Linear>(4 * opts.d_model, opts.d_model, true, gen));
  mlp_dropout = register_module("mlp_dropout", std::make_shared<Dropout>(opts.dropout, gen));
}

Tensor TransformerBlock::forward(const Tensor& x) {
  Tensor h = x + attn->forward(ln1->forward(x));
  return h + mlp_dropout->forward(fc_proj->forward(gelu(fc->forward(ln2->forward(h)))));
}

}  // namespace cohort
