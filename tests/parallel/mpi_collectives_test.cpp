// The mpi backend against the reference, run by ctest under mpirun -np 1, 2, 3 and 4: every
// collective, dtype and op, through shared memory (default chunks, and tiny chunks so that small
// buffers take many pipeline steps) and through MPI's own collectives.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "cohort/core/ops/factory.h"
#include "cohort/parallel/comm/mpi_backend.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "collective_checks.h"
#include "mpi_main.h"

namespace cohort::parallel {
namespace {

using Algorithm = MpiOptions::Algorithm;

struct Variant {
  const char* name;
  MpiOptions options;
};

MpiOptions tiny_chunks() {
  MpiOptions o;
  o.algorithm = Algorithm::shared_memory;
  o.chunk_bytes = 4096;  // rounded to a page: the smallest pipeline step
  o.one_shot_bytes = 256;
  return o;
}

// Every all-reduce writes its output with non-temporal stores (normally only large ones do).
MpiOptions streaming() {
  MpiOptions o = tiny_chunks();
  o.streaming_bytes = 1;
  return o;
}

MpiOptions native() {
  MpiOptions o;
  o.algorithm = Algorithm::native;
  return o;
}

const Variant kVariants[] = {{"shm", MpiOptions{}},
                             {"shm_tiny_chunks", tiny_chunks()},
                             {"shm_streaming", streaming()},
                             {"native", native()}};
const std::vector<int64_t> kSizes = {0, 1, 7, 1000, 4099, 70001};

class MpiCollectives : public ::testing::TestWithParam<Variant> {
 protected:
  void SetUp() override { comm_ = make_mpi_world_communicator("world", GetParam().options); }
  std::shared_ptr<Communicator> comm_;
};

TEST_P(MpiCollectives, AllReduce) { testing::check_all_reduce(*comm_, kSizes); }
TEST_P(MpiCollectives, Broadcast) { testing::check_broadcast(*comm_, kSizes); }
TEST_P(MpiCollectives, AllGather) { testing::check_all_gather(*comm_, kSizes); }
TEST_P(MpiCollectives, ReduceScatter) { testing::check_reduce_scatter(*comm_, kSizes); }
TEST_P(MpiCollectives, SendRecv) { testing::check_send_recv(*comm_, 70001); }

// Several collectives in flight at once, waited on in reverse: they still run in issue order.
TEST_P(MpiCollectives, ManyInFlight) {
  const int P = comm_->size();
  std::vector<std::vector<float>> bufs(8, std::vector<float>(3000));
  std::vector<WorkPtr> works;
  for (int k = 0; k < 8; ++k) {
    for (size_t i = 0; i < bufs[k].size(); ++i) bufs[k][i] = static_cast<float>(comm_->rank() + k + i % 5);
    works.push_back(comm_->all_reduce(bufs[k].data(), bufs[k].data(), bufs[k].size(), DType::f32));
  }
  for (int k = 7; k >= 0; --k) works[k]->wait();
  for (int k = 0; k < 8; ++k) {
    for (size_t i = 0; i < bufs[k].size(); ++i) {
      ASSERT_EQ(bufs[k][i], static_cast<float>(P * (P - 1) / 2 + P * (k + i % 5))) << "buffer " << k << " at " << i;
    }
  }
  EXPECT_EQ(works[7]->seq(), comm_->last_seq());
}

TEST_P(MpiCollectives, SplitIntoPairs) {
  auto pairs = comm_->split(comm_->rank() / 2, comm_->rank(), "pairs");
  ASSERT_NE(pairs, nullptr);
  EXPECT_EQ(pairs->rank(), comm_->rank() % 2);
  const int expected_size = std::min(2, comm_->size() - comm_->rank() / 2 * 2);
  EXPECT_EQ(pairs->size(), expected_size);
  int64_t v = comm_->rank();
  pairs->all_reduce(&v, &v, 1, DType::i64)->wait();
  const int first = comm_->rank() / 2 * 2;
  EXPECT_EQ(v, expected_size == 2 ? 2 * first + 1 : first);
  auto none = comm_->split(-1, 0, "nobody");
  EXPECT_EQ(none, nullptr);
  comm_->barrier()->wait();  // the parent keeps working
}

INSTANTIATE_TEST_SUITE_P(Algorithms, MpiCollectives, ::testing::ValuesIn(kVariants),
                         [](const auto& info) { return std::string(info.param.name); });

// A large all-reduce runs on the progress thread: it completes while this thread only sleeps.
TEST(MpiProgress, LargeCollectiveOverlapsWithCompute) {
  auto comm = make_mpi_world_communicator();
  std::vector<float> big(2 << 20, 1.0f);  // 8 MB: above async_bytes
  WorkPtr w = comm->all_reduce(big.data(), big.data(), big.size(), DType::f32);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!w->is_completed() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // "compute", never helping
  }
  EXPECT_TRUE(w->is_completed());
  w->wait();
  EXPECT_EQ(big.front(), static_cast<float>(comm->size()));
  EXPECT_EQ(big.back(), static_cast<float>(comm->size()));
}

TEST(MpiProcessGroup, TensorsThroughTheWorldGroup) {
  ProcessGroup world = make_mpi_world_group();
  Tensor t = full({5, 3}, static_cast<double>(world.rank()));
  world.all_reduce(t, {ReduceOp::max})->wait();
  EXPECT_EQ(t.sum().item<float>(), 15.0f * (world.size() - 1));
  Tensor all = Tensor::empty({world.size(), 5, 3});
  world.all_gather(all, t)->wait();
  EXPECT_EQ(all.sum().item<float>(), 15.0f * (world.size() - 1) * world.size());
  EXPECT_THROW(world.device(), DeviceError);
}

TEST(MpiProcessGroup, FactoryChecksWhatItIsGiven) {
  ProcessGroupConfig config;
  ProcessGroup world = make_process_group(config);
  EXPECT_EQ(world.size(), testing::g_session->world_size());
  config.world_size = world.size() + 1;
  EXPECT_THROW(make_process_group(config), ValueError);  // the launcher and MPI disagree
  config = ProcessGroupConfig();
  config.backend = "gloo";
  EXPECT_THROW(make_process_group(config), ValueError);
  if (cuda_device_count() == 0) {
    config.backend = "nccl";
    EXPECT_THROW(make_process_group(config), DeviceError);  // no GPU: says so, before any collective
  }
}

}  // namespace
}  // namespace cohort::parallel

int main(int argc, char** argv) { return cohort::parallel::testing::run_mpi_tests(argc, argv); }
