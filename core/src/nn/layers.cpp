#include "cohort/core/nn/layers.h"

#include <cmath>

#include "cohort/core/nn/init.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/linalg.h"

namespace cohort {

Linear::Linear(int64_t in_features, int64_t out_features, bool with_bias, Generator* gen) : Module("Linear") {
  COHORT_CHECK(in_features > 0 && out_features > 0, ValueError, "Linear: sizes must be positive, got in ",
               in_features, " and out ", out_features);
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}));
  init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({out_features}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions opts, bool with_bias,
               Generator* gen)
    : Module("Conv2d"), options(opts) {
  COHORT_CHECK(opts.groups > 0 && in_channels % opts.groups == 0 && out_channels % opts.groups == 0, ValueError,
               "Conv2d: groups ", opts.groups, " must divide in_channels ", in_channels, " and out_channels ",
               out_channels);
  weight = register_parameter("weight",
                              Tensor::empty({out_channels, in_channels / opts.groups, kernel_size, kernel_size}));
  init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (with_bias) {
    bias = register_parameter("bias", Tensor::empty({out_channels}));
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(weight)));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, options); }

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator* gen) : Module("Embedding") {
  weight = register_parameter("weight", Tensor::empty({num_embeddings, embedding_dim}));
  init::normal_(weight, 0.0, 1.0, gen);
}

LayerNorm::LayerNorm(Shape shape, double eps_, bool elementwise_affine)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), eps(eps_) {
  if (elementwise_affine) {
    weight = register_parameter("weight", ones(normalized_shape));
    bias = register_parameter("bias", zeros(normalized_shape));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape, weight, bias, eps); }

Dropout::Dropout(double p_, Generator* gen) : Module("Dropout"), p(p_), gen_(gen) {
  COHORT_CHECK(p >= 0.0 && p < 1.0, ValueError, "Dropout: p must be in [0, 1), got ", p);
}

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor GELU::forward(const Tensor& x) { return gelu(x, approximate); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (auto& m : modules) push_back(m);
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

}  // namespace cohort
