// The local backend (ranks as threads) against the reference: every collective, dtype and op, on
// 1 to 4 ranks, sizes not divisible by the rank count included.
#include <gtest/gtest.h>

#include "cohort/core/ops/factory.h"
#include "cohort/parallel/comm/local_backend.h"
#include "collective_checks.h"

namespace cohort::parallel {
namespace {

using testing::check_all_gather;
using testing::check_all_reduce;
using testing::check_broadcast;
using testing::check_reduce_scatter;
using testing::check_send_recv;

const std::vector<int64_t> kSizes = {0, 1, 7, 1000, 4099};

class LocalCollectives : public ::testing::TestWithParam<int> {};

TEST_P(LocalCollectives, AllReduce) {
  LocalWorld::run(GetParam(), [](ProcessGroup& g) { check_all_reduce(g.host(), kSizes); });
}

TEST_P(LocalCollectives, Broadcast) {
  LocalWorld::run(GetParam(), [](ProcessGroup& g) { check_broadcast(g.host(), kSizes); });
}

TEST_P(LocalCollectives, AllGather) {
  LocalWorld::run(GetParam(), [](ProcessGroup& g) { check_all_gather(g.host(), kSizes); });
}

TEST_P(LocalCollectives, ReduceScatter) {
  LocalWorld::run(GetParam(), [](ProcessGroup& g) { check_reduce_scatter(g.host(), kSizes); });
}

TEST_P(LocalCollectives, SendRecv) {
  LocalWorld::run(GetParam(), [](ProcessGroup& g) { check_send_recv(g.host(), 1001); });
}

// Tensors: the group routes by device and keeps the tensors alive; sequence numbers count up.
TEST_P(LocalCollectives, TensorsAndSequenceNumbers) {
  LocalWorld::run(GetParam(), [](ProcessGroup& g) {
    const int P = g.size();
    Tensor t = full({2, 3}, g.rank() + 1.0);
    WorkPtr w = g.all_reduce(t, {ReduceOp::sum});
    EXPECT_EQ(w->seq(), 1u);
    EXPECT_EQ(w->describe(), "all_reduce #1");
    w->wait();
    EXPECT_TRUE(w->is_completed());
    EXPECT_EQ(t.sum().item<float>(), 6.0f * P * (P + 1) / 2);  // exact: small integers
    Tensor gathered = Tensor::empty({P, 2, 3});
    EXPECT_EQ(g.all_gather(gathered, t)->seq(), 2u);
    EXPECT_EQ(g.barrier()->seq(), 3u);
    g.barrier()->wait();  // #4; waiting on it implies #2 and #3 finished everywhere
  });
}

INSTANTIATE_TEST_SUITE_P(Ranks, LocalCollectives, ::testing::Values(1, 2, 3, 4),
                         [](const auto& info) { return std::to_string(info.param) + "ranks"; });

TEST(LocalCommunicator, RejectsBadArguments) {
  LocalWorld world(2);
  auto comm = world.communicator(0);
  Tensor ints = zeros({3}, DType::i32);
  EXPECT_THROW(comm->all_reduce(ints, {ReduceOp::avg}), DTypeError);
  Tensor t = zeros({4, 2});
  Tensor strided = t.t();
  EXPECT_THROW(comm->all_reduce(strided), ValueError);
  Tensor wrong_out = zeros({3});
  EXPECT_THROW(comm->all_gather(wrong_out, t), ShapeError);
  EXPECT_THROW(comm->broadcast(t, {5}), ValueError);
  EXPECT_THROW(comm->send(t, 0), ValueError);  // to itself
  EXPECT_THROW(world.communicator(2), ValueError);
}

TEST(LocalCommunicator, MismatchedArgumentsFailOnEveryRank) {
  EXPECT_THROW(LocalWorld::run(2,
                               [](ProcessGroup& g) {
                                 std::vector<float> buf(g.rank() == 0 ? 4 : 5);
                                 g.host().all_reduce(buf.data(), buf.data(), buf.size(), DType::f32)->wait();
                               }),
               CommError);
}

TEST(LocalCommunicator, SplitAndNewGroup) {
  LocalWorld::run(4, [](ProcessGroup& world) {
    // {0, 2} and {1, 3}, ordered by descending key: rank 2 becomes rank 0 of the evens.
    ProcessGroup parity = world.split(world.rank() % 2, -world.rank(), "parity");
    ASSERT_TRUE(parity.is_member());
    EXPECT_EQ(parity.size(), 2);
    EXPECT_EQ(parity.rank(), world.rank() < 2 ? 1 : 0);
    Tensor t = full({1}, static_cast<double>(world.rank()));
    parity.all_reduce(t)->wait();
    EXPECT_EQ(t.item<float>(), world.rank() % 2 == 0 ? 2.0f : 4.0f);

    ProcessGroup trio = world.new_group({3, 1, 0}, "trio");
    EXPECT_EQ(trio.is_member(), world.rank() != 2);
    if (trio.is_member()) {
      EXPECT_EQ(trio.rank(), world.rank() == 3 ? 0 : world.rank() == 1 ? 1 : 2);
      Tensor u = full({1}, 1.0);
      trio.all_reduce(u)->wait();
      EXPECT_EQ(u.item<float>(), 3.0f);
    }
    world.barrier()->wait();  // the parent still works after splitting
  });
}

TEST(ProcessGroup, RoutesByDeviceAndSaysWhatIsMissing) {
  LocalWorld world(1);
  ProcessGroup g = world.group(0);
  EXPECT_TRUE(g.has_host());
  EXPECT_FALSE(g.has_device());
  try {
    g.device();
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("no device communicator"), std::string::npos) << e.what();
  }
  ProcessGroup empty;
  EXPECT_FALSE(empty.is_member());
  EXPECT_THROW(empty.rank(), ValueError);
}

// A tensor that says it lives on cuda:0 (its bytes are host memory that must never be read: a
// host backend handed a CUDA tensor has to refuse it from its device alone). Made without a GPU.
Tensor fake_cuda_tensor(std::vector<float>& bytes) {
  auto storage = std::make_shared<StorageImpl>(bytes.data(), bytes.size() * sizeof(float), Device::cuda(0),
                                               [](void*) {});  // not ours to free
  const Shape shape{static_cast<int64_t>(bytes.size())};
  return Tensor(std::make_shared<TensorImpl>(storage, 0, shape, contiguous_strides(shape), DType::f32));
}

TEST(LocalBackend, RefusesCudaTensorsNamingTheNcclBackend) {
  LocalWorld world(1);
  auto comm = world.communicator(0);
  std::vector<float> bytes(8, 1.0f);
  Tensor t = fake_cuda_tensor(bytes);
  Tensor host = zeros({8});
  try {
    comm->all_reduce(t);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cuda:0"), std::string::npos) << what;
    EXPECT_NE(what.find("nccl"), std::string::npos) << what;
  }
  EXPECT_THROW(comm->all_gather(host, t), DeviceError);
  EXPECT_THROW(comm->reduce_scatter(t, host), DeviceError);
  EXPECT_THROW(comm->broadcast(t), DeviceError);
  EXPECT_EQ(comm->last_seq(), 0u);  // refused before any collective was issued
  // The group routes a CUDA tensor to its device communicator, and says it has none.
  ProcessGroup g = world.group(0);
  EXPECT_THROW(g.all_reduce(t), DeviceError);
}

}  // namespace
}  // namespace cohort::parallel
