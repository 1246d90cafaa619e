#include <gtest/gtest.h>

#include "cohort/core/core.h"

using namespace cohort;

TEST(Tensor, EmptyHasShapeStridesAndDtype) {
  Tensor t = Tensor::empty({2, 3, 4}, DType::f64);
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Strides{12, 4, 1}));
  EXPECT_EQ(t.dtype(), DType::f64);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_TRUE(t.device().is_cpu());
}

TEST(Tensor, ViewsShareStorage) {
  Tensor t = arange(6.0).reshape({2, 3});
  Tensor tt = t.t();
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.storage(), t.storage());
  EXPECT_DOUBLE_EQ(tt.select(0, 2).select(0, 1).item(), 5.0);
  Tensor n = t.narrow(1, 1, 2);
  n.fill_(-1);
  EXPECT_DOUBLE_EQ(t.select(0, 1).select(0, 2).item(), -1.0);
  EXPECT_DOUBLE_EQ(t.select(0, 1).select(0, 0).item(), 3.0);
}

TEST(Tensor, ExpandHasZeroStride) {
  Tensor t = arange(3.0).reshape({3, 1}).expand({3, 4});
  EXPECT_EQ(t.strides()[1], 0);
  Tensor c = t.contiguous();
  EXPECT_DOUBLE_EQ(c.select(0, 2).select(0, 3).item(), 2.0);
}

TEST(Tensor, ViewOfNonContiguousFailsWithAdvice) {
  Tensor t = zeros({2, 3}).t();
  try {
    (void)t.view({6});
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("use reshape()"), std::string::npos) << e.what();
  }
  EXPECT_EQ(t.reshape({6}).shape(), (Shape{6}));
}

TEST(Tensor, DtypeConversionRoundsHalfTypes) {
  Tensor x = tensor({1.0, 1.0 / 3.0, 65504.0, 1e-8, -2.5});
  Tensor h = x.to(DType::f16).to(DType::f64);
  EXPECT_DOUBLE_EQ(h.select(0, 0).item(), 1.0);
  EXPECT_NEAR(h.select(0, 1).item(), 1.0 / 3.0, 1e-3);
  EXPECT_DOUBLE_EQ(h.select(0, 2).item(), 65504.0);
  EXPECT_NEAR(h.select(0, 3).item(), 1e-8, 6e-8);  // a subnormal half
  EXPECT_DOUBLE_EQ(h.select(0, 4).item(), -2.5);
  Tensor b = x.to(DType::bf16).to(DType::f32);
  EXPECT_NEAR(b.select(0, 1).item(), 1.0 / 3.0, 2e-3);
  EXPECT_EQ(x.to(DType::i64).select(0, 4).item<int64_t>(), -2);
  EXPECT_EQ(x.to(DType::boolean).select(0, 0).item<bool>(), true);
}

TEST(Tensor, PrintsLikePyTorch) {
  EXPECT_EQ(tensor({1, 2, 3, 4}, {2, 2}).str(), "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], dtype=f32)");
  EXPECT_EQ(arange(3.0, TensorOptions(DType::i64)).str(), "tensor([0, 1, 2], dtype=i64)");
}

TEST(Generator, SameSeedSameValuesWhateverTheThreadCount) {
  set_num_threads(1);
  Generator g1(7);
  Tensor a = randn({100003}, {}, &g1);
  set_num_threads(2);
  Generator g2(7);
  Tensor b = randn({100003}, {}, &g2);
  EXPECT_EQ(0, std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()));
  Tensor c = randn({100003}, {}, &g2);  // the generator moved on
  EXPECT_NE(0, std::memcmp(a.raw_data(), c.raw_data(), a.nbytes()));
  const double m = a.mean().item();
  EXPECT_NEAR(m, 0.0, 0.02);
}

TEST(Tensor, CudaWithoutGpuIsAClearError) {
  try {
    (void)Tensor::empty({2}, TensorOptions().with_device(Device::cuda(0)));
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

TEST(Allocator, LargeBlocksAreReusedAndCounted) {
  CpuAllocator& a = CpuAllocator::instance();
  const AllocatorStats before = a.stats();
  void* first;
  {
    Tensor t = Tensor::empty({1 << 20});  // 4 MiB
    first = t.raw_data();
    EXPECT_GE(a.stats().allocated, before.allocated + (4u << 20));
  }
  const AllocatorStats freed = a.stats();
  EXPECT_EQ(freed.allocated, before.allocated);
  Tensor again = Tensor::empty({1 << 20});
  EXPECT_EQ(again.raw_data(), first);  // the same block, from the cache
  EXPECT_EQ(a.stats().cache_hits, freed.cache_hits + 1);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(again.raw_data()) % 64, 0u);
}
