// A GPT-style causal self-attention block and the pre-norm transformer block built on it.
#pragma once

#include <memory>

#include "cohort/core/nn/layers.h"

namespace cohort {

struct AttentionOptions {
  int64_t d_model = 128;
  int64_t n_heads = 4;
  double dropout = 0.0;
};

// x (B, T, C) -> (B, T, C): qkv = x Wqkv; per head softmax(q k^T / sqrt(D) + causal mask) v; out proj.
class CausalSelfAttention : public Module {
 public:
  explicit CausalSelfAttention(AttentionOptions options, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  AttentionOptions options;
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<Dropout> attn_dropout, resid_dropout;
};

// x + attn(ln1(x)), then + mlp(ln2(x)) with mlp = Linear(C, 4C) -> GELU -> Linear(4C, C).
class TransformerBlock : public Module {
 public:
  explicit TransformerBlock(AttentionOptions options, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<Linear> fc, fc_proj;
  std::shared_ptr<Dropout> mlp_dropout;
};

}  // namespace cohort
