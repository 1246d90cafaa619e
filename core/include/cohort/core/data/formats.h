// Readers (and writers, to make small valid files without internet) for real data-set formats:
// MNIST IDX files, CIFAR-10 binary batches and flat little-endian uint16 token files. The readers
// are what reads the real data sets; the writers let examples and tests make files of the same
// format. A malformed file is a ValueError naming the file, what was expected and what was found.
#pragma once

#include <string>
#include <vector>

#include "cohort/core/data/dataset.h"

namespace cohort {

// images: (N, 1, rows, cols) f32 in [0, 1]; labels: (N) i64.
TensorDataset read_mnist(const std::string& images_path, const std::string& labels_path);
void write_mnist(const std::string& images_path, const std::string& labels_path, const Tensor& images_u8_as_i64,
                 const Tensor& labels);

// One or more data_batch_*.bin files: records of 1 label byte + 3072 pixel bytes (R, G, B planes).
// images: (N, 3, 32, 32) f32 in [0, 1]; labels: (N) i64.
TensorDataset read_cifar10(const std::vector<std::string>& paths);
void write_cifar10(const std::string& path, const Tensor& images_u8_as_i64, const Tensor& labels);

// Tokens: (N) i64 from a file of little-endian uint16.
Tensor read_tokens(const std::string& path);
void write_tokens(const std::string& path, const Tensor& tokens);

// Small synthetic data sets in those formats that a model can learn (class prototypes plus noise;
// text from a small grammar), written to `dir`; return the paths.
struct SyntheticPaths {
  std::vector<std::string> files;
};
SyntheticPaths make_synthetic_mnist(const std::string& dir, int64_t n, uint64_t seed);
SyntheticPaths make_synthetic_cifar10(const std::string& dir, int64_t n, uint64_t seed);
SyntheticPaths make_synthetic_text(const std::string& dir, int64_t n_chars, uint64_t seed);

}  // namespace cohort
