#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "cohort/core/core.h"

using namespace cohort;

namespace {
std::string fresh_dir(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("cohort-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
}  // namespace

TEST(Sampler, PermutationDependsOnlyOnSeedAndEpoch) {
  EXPECT_EQ(permutation(100, 7, 3), permutation(100, 7, 3));
  EXPECT_NE(permutation(100, 7, 3), permutation(100, 7, 4));
  std::vector<int64_t> p = permutation(100, 7, 3);
  std::sort(p.begin(), p.end());
  for (int64_t i = 0; i < 100; ++i) EXPECT_EQ(p[i], i);
}

// The partition property: the ranks' shares are disjoint, have equal length, and together are
// the epoch order (plus wrap-around padding), whatever the world size.
TEST(Sampler, DistributedSharesPartitionTheSameEpochOrder) {
  const int64_t n = 103;
  for (int64_t world : {1, 2, 3, 4, 7}) {
    std::vector<int64_t> merged(n + world);
    int64_t total = 0;
    std::multiset<int64_t> seen;
    for (int64_t r = 0; r < world; ++r) {
      DistributedSampler s(n, r, world, true, 11);
      std::vector<int64_t> idx = s.indices(2);
      EXPECT_EQ(static_cast<int64_t>(idx.size()), (n + world - 1) / world);
      for (size_t i = 0; i < idx.size(); ++i) merged[i * world + r] = idx[i];
      total += static_cast<int64_t>(idx.size());
      seen.insert(idx.begin(), idx.end());
    }
    // Interleaving the shares back gives the one-rank order.
    const std::vector<int64_t> order = permutation(n, 11, 2);
    for (int64_t i = 0; i < n; ++i) EXPECT_EQ(merged[i], order[i]) << "world " << world << " position " << i;
    for (int64_t i = 0; i < n; ++i) EXPECT_GE(seen.count(i), 1u) << "world " << world;
    EXPECT_EQ(total - n, (world - n % world) % world) << "padding for world " << world;
  }
  DistributedSampler dropping(n, 0, 4, false, 0, /*drop_last=*/true);
  EXPECT_EQ(dropping.length(), 25);
  EXPECT_THROW(DistributedSampler(n, 4, 4), ValueError);
}

TEST(DataLoader, BatchesInSamplerOrderWithPrefetch) {
  auto ds = std::make_shared<TensorDataset>(arange(10.0).reshape({10, 1}), arange(10.0, TensorOptions(DType::i64)));
  DataLoaderOptions o;
  o.batch_size = 4;
  o.prefetch = 2;
  DataLoader loader(ds, o);
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  std::vector<int64_t> sizes;
  Batch b;
  double total = 0;
  loader.start_epoch(0);
  while (loader.next(&b)) {
    sizes.push_back(b.data.size(0));
    total += b.target.sum().item();
  }
  EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
  EXPECT_DOUBLE_EQ(total, 45.0);
  o.drop_last = true;
  EXPECT_EQ(DataLoader(ds, o).batches_per_epoch(), 2);
}

TEST(DataLoader, PositionRestoresMidEpoch) {
  auto ds = std::make_shared<TensorDataset>(arange(50.0).reshape({50, 1}), arange(50.0, TensorOptions(DType::i64)));
  DataLoaderOptions o;
  o.batch_size = 5;
  o.shuffle = true;
  o.seed = 9;
  DataLoader a(ds, o), b(ds, o);
  Batch x, y;
  a.start_epoch(1);
  for (int i = 0; i < 3; ++i) a.next(&x);
  const LoaderPosition pos = a.position();
  EXPECT_EQ(pos.epoch, 1);
  EXPECT_EQ(pos.batch, 3);
  b.restore(pos);
  while (a.next(&x)) {
    ASSERT_TRUE(b.next(&y));
    EXPECT_DOUBLE_EQ((x.target - y.target).to(DType::f64).sum().item(), 0.0);
    EXPECT_DOUBLE_EQ(sum(abs(x.target - y.target).to(DType::f64)).item(), 0.0);
  }
  EXPECT_FALSE(b.next(&y));
}

TEST(Formats, MnistCifarAndTokensRoundTrip) {
  const std::string dir = fresh_dir("formats");
  SyntheticPaths m = make_synthetic_mnist(dir, 20, 1);
  TensorDataset mnist = read_mnist(m.files[0], m.files[1]);
  EXPECT_EQ(mnist.data().shape(), (Shape{20, 1, 28, 28}));
  EXPECT_LE(max(mnist.data()).item(), 1.0);
  EXPECT_LT(max(mnist.targets()).item(), 10);
  SyntheticPaths c = make_synthetic_cifar10(dir, 7, 2);
  TensorDataset cifar = read_cifar10(c.files);
  EXPECT_EQ(cifar.data().shape(), (Shape{7, 3, 32, 32}));
  SyntheticPaths t = make_synthetic_text(dir, 1000, 3);
  Tensor tokens = read_tokens(t.files[0]);
  EXPECT_EQ(tokens.numel(), 1000);
  TokenDataset windows(tokens, 64);
  Batch b = windows.get_batch({0, 1});
  EXPECT_EQ(b.data.shape(), (Shape{2, 64}));
  // Targets are the inputs shifted by one token.
  EXPECT_EQ(b.data.select(0, 1).select(0, 1).item<int64_t>(), b.target.select(0, 1).select(0, 0).item<int64_t>());
  std::filesystem::remove_all(dir);
}

TEST(Formats, MalformedFilesAreClearErrors) {
  const std::string dir = fresh_dir("malformed");
  SyntheticPaths m = make_synthetic_mnist(dir, 5, 1);
  std::filesystem::resize_file(m.files[0], std::filesystem::file_size(m.files[0]) - 10);
  try {
    read_mnist(m.files[0], m.files[1]);
    FAIL() << "expected ValueError";
  } catch (const ValueError& e) {
    EXPECT_TRUE(contains(e.what(), "truncated")) << e.what();
  }
  std::ofstream(dir + "/odd.bin") << "abc";
  EXPECT_THROW(read_tokens(dir + "/odd.bin"), ValueError);
  EXPECT_THROW(read_cifar10({dir + "/odd.bin"}), ValueError);
  EXPECT_THROW(read_mnist(dir + "/missing", dir + "/missing"), ValueError);
  std::filesystem::remove_all(dir);
}
