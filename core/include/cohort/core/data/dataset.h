// Datasets and samplers.
//
// A Dataset hands out whole batches by index (one gather per batch, not one tensor per example).
// A Sampler decides the order of indices for an epoch; DistributedSampler gives each of `world`
// ranks a disjoint share of the same epoch order, so N ranks x batch B see, step by step, the same
// examples as 1 rank x batch N*B.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cohort/core/tensor.h"

namespace cohort {

struct Batch {
  Tensor data;    // (B, ...)
  Tensor target;  // (B, ...)

  // Both tensors on `device` (the same tensors when already there). With non_blocking and a batch
  // in pinned memory (DataLoaderOptions::pin_memory), the copies to a GPU are queued and the host
  // goes on at once (keep this batch until a later read of a result has waited for the device);
  // otherwise it waits for them, as Tensor::to does.
  Batch to(Device device, bool non_blocking = false) const;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Batch get_batch(const std::vector<int64_t>& indices) const = 0;
};

// Examples are the rows (dim 0) of two tensors.
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor data, Tensor targets);
  int64_t size() const override { return data_.size(0); }
  Batch get_batch(const std::vector<int64_t>& indices) const override;
  const Tensor& data() const { return data_; }
  const Tensor& targets() const { return targets_; }

 private:
  Tensor data_, targets_;
};

// Next-token windows over a token stream: example i is tokens[i*T, i*T+T) with targets shifted by one.
class TokenDataset : public Dataset {
 public:
  TokenDataset(Tensor tokens, int64_t seq_len);  // tokens: 1-D i64
  int64_t size() const override;
  Batch get_batch(const std::vector<int64_t>& indices) const override;  // (B, T) and (B, T), i64

 private:
  Tensor tokens_;
  int64_t seq_len_;
};

// The order of one epoch's indices.
class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::vector<int64_t> indices(int64_t epoch) const = 0;
  virtual int64_t length() const = 0;  // indices per epoch
};

class SequentialSampler : public Sampler {
 public:
  explicit SequentialSampler(int64_t size) : size_(size) {}
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t length() const override { return size_; }

 private:
  int64_t size_;
};

// A permutation of [0, n) that depends only on (seed, epoch) (Fisher-Yates driven by Philox).
std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch);

class RandomSampler : public Sampler {
 public:
  RandomSampler(int64_t size, uint64_t seed) : size_(size), seed_(seed) {}
  std::vector<int64_t> indices(int64_t epoch) const override { return permutation(size_, seed_, epoch); }
  int64_t length() const override { return size_; }

 private:
  int64_t size_;
  uint64_t seed_;
};

// Rank `rank` of `world` takes positions rank, rank + world, ... of the epoch order (shuffled by
// (seed, epoch) or sequential). Unless drop_last, the order is padded by repeating its start so
// every rank gets the same count; with drop_last the tail that does not fill all ranks is dropped.
class DistributedSampler : public Sampler {
 public:
  DistributedSampler(int64_t size, int64_t rank, int64_t world, bool shuffle = true, uint64_t seed = 0,
                     bool drop_last = false);
  std::vector<int64_t> indices(int64_t epoch) const override;
  int64_t length() const override;

 private:
  int64_t size_, rank_, world_;
  bool shuffle_;
  uint64_t seed_;
  bool drop_last_;
};

}  // namespace cohort
