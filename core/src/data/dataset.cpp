#include "cohort/core/data/dataset.h"

#include "cohort/core/generator.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/indexing.h"

namespace cohort {

namespace {
Tensor index_tensor(const std::vector<int64_t>& indices) { return from_vector(indices); }
}  // namespace

Batch Batch::to(Device device, bool non_blocking) const {
  Batch out;
  out.data = data.defined() ? data.to(device, non_blocking) : data;
  out.target = target.defined() ? target.to(device, non_blocking) : target;
  return out;
}

TensorDataset::TensorDataset(Tensor data, Tensor targets) : data_(std::move(data)), targets_(std::move(targets)) {
  COHORT_CHECK(data_.dim() >= 1 && targets_.dim() >= 1 && data_.size(0) == targets_.size(0), ShapeError,
               "TensorDataset: data ", data_.shape_str(), " and targets ", targets_.shape_str(),
               " must have the same size in dim 0");
}

Batch TensorDataset::get_batch(const std::vector<int64_t>& indices) const {
  const Tensor idx = index_tensor(indices);
  return {index_select(data_, 0, idx), index_select(targets_, 0, idx)};
}

TokenDataset::TokenDataset(Tensor tokens, int64_t seq_len) : tokens_(std::move(tokens)), seq_len_(seq_len) {
  COHORT_CHECK(tokens_.dim() == 1 && tokens_.dtype() == DType::i64, ValueError,
               "TokenDataset: expected 1-D i64 tokens, got ", tokens_.shape_str(), " ", dtype_name(tokens_.dtype()));
  COHORT_CHECK(seq_len > 0 && tokens_.numel() > seq_len, ValueError, "TokenDataset: ", tokens_.numel(),
               " tokens are too few for one window of ", seq_len, " + 1");
  tokens_ = tokens_.contiguous();
}

int64_t TokenDataset::size() const { return (tokens_.numel() - 1) / seq_len_; }

Batch TokenDataset::get_batch(const std::vector<int64_t>& indices) const {
  const int64_t B = static_cast<int64_t>(indices.size()), T = seq_len_;
  Tensor x = Tensor::empty({B, T}, DType::i64), y = Tensor::empty({B, T}, DType::i64);
  const int64_t* src = tokens_.data_ptr<int64_t>();
  int64_t* xp = x.data_ptr<int64_t>();
  int64_t* yp = y.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    COHORT_CHECK(indices[b] >= 0 && indices[b] < size(), IndexError, "TokenDataset: index ", indices[b],
                 " is out of range for ", size(), " windows");
    const int64_t* w = src + indices[b] * T;
    for (int64_t t = 0; t < T; ++t) {
      xp[b * T + t] = w[t];
      yp[b * T + t] = w[t + 1];
    }
  }
  return {x, y};
}

std::vector<int64_t> SequentialSampler::indices(int64_t) const {
  std::vector<int64_t> out(size_);
  for (int64_t i = 0; i < size_; ++i) out[i] = i;
  return out;
}

std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> out(n);
  for (int64_t i = 0; i < n; ++i) out[i] = i;
  // The stream for (seed, epoch): a distinct Philox key per epoch.
  const uint64_t key = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(epoch) + 1;
  for (int64_t i = n - 1; i > 0; --i) {
    uint32_t r[4];
    detail::philox(key, static_cast<uint64_t>(i), r);
    const uint64_t x = (static_cast<uint64_t>(r[0]) << 32) | r[1];
    std::swap(out[i], out[x % static_cast<uint64_t>(i + 1)]);
  }
  return out;
}

DistributedSampler::DistributedSampler(int64_t size, int64_t rank, int64_t world, bool shuffle, uint64_t seed,
                                       bool drop_last)
    : size_(size), rank_(rank), world_(world), shuffle_(shuffle), seed_(seed), drop_last_(drop_last) {
  COHORT_CHECK(world > 0 && rank >= 0 && rank < world, ValueError, "DistributedSampler: rank ", rank,
               " is not in [0, world) for world ", world);
  COHORT_CHECK(size > 0, ValueError, "DistributedSampler: the dataset is empty");
  COHORT_CHECK(!drop_last || size >= world, ValueError, "DistributedSampler: with drop_last, ", size,
               " examples leave nothing for each of ", world, " ranks");
}

int64_t DistributedSampler::length() const { return drop_last_ ? size_ / world_ : (size_ + world_ - 1) / world_; }

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
  std::vector<int64_t> order = shuffle_ ? permutation(size_, seed_, epoch) : SequentialSampler(size_).indices(epoch);
  const int64_t total = length() * world_;
  for (int64_t i = size_; i < total; ++i) order.push_back(order[i % size_]);  // pad by wrapping
  std::vector<int64_t> out;
  out.reserve(length());
  for (int64_t i = rank_; i < total; i += world_) out.push_back(order[i]);
  return out;
}

}  // namespace cohort
