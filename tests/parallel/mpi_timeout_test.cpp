// Timeouts on the mpi backend, under mpirun with 2 or more ranks: rank 1 finishes all_reduce #1
// and skips #2; the others time out in #2 and their error says so:
//   mpi group 'world': all_reduce #2 timed out after 500 ms on rank 0 of 4: rank 1 never arrived
//   (it finished all_reduce #1 and has not started #2); ranks 0, 2, 3 arrived
// Through shared memory the peers read each other's state directly; through MPI they ask each
// other, and the skipping rank's progress thread answers.
#include <gtest/gtest.h>

#include <chrono>

#include "cohort/parallel/comm/mpi_backend.h"
#include "mpi_main.h"

namespace cohort::parallel {
namespace {

using namespace std::chrono_literals;
using testing::g_session;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string arrived_list(int size) {
  std::string s = "ranks 0";
  for (int r = 2; r < size; ++r) s += ", " + std::to_string(r);
  return size == 2 ? "rank 0 arrived" : s + " arrived";
}

class MpiTimeout : public ::testing::TestWithParam<MpiOptions::Algorithm> {};

TEST_P(MpiTimeout, ReportNamesTheRankThatNeverArrived) {
  const int rank = g_session->world_rank(), size = g_session->world_size();
  if (size < 2) GTEST_SKIP() << "needs 2 or more ranks";
  MpiOptions options;
  options.algorithm = GetParam();
  auto comm = make_mpi_world_communicator("world", options);
  float x = 1.0f;
  comm->all_reduce(&x, &x, 1, DType::f32)->wait();  // #1, everyone

  int timed_out = 0;
  if (rank != 1) {
    try {
      comm->all_reduce(&x, &x, 1, DType::f32, {ReduceOp::sum, 500ms})->wait();
      ADD_FAILURE() << "all_reduce #2 completed without rank 1";
    } catch (const TimeoutError& e) {
      timed_out = 1;
      std::printf("[rank %d] %s\n", rank, e.what());
      EXPECT_TRUE(contains(e.what(), "mpi group 'world': all_reduce #2 timed out after 500 ms on rank " +
                                         std::to_string(rank) + " of " + std::to_string(size)))
          << e.what();
      EXPECT_TRUE(contains(e.what(), "rank 1 never arrived (it finished all_reduce #1 and has not started #2)"))
          << e.what();
      EXPECT_TRUE(contains(e.what(), arrived_list(size))) << e.what();
    } catch (const CommError& e) {
      // Through shared memory a rank may notice first that a peer already gave up.
      EXPECT_TRUE(contains(e.what(), "all_reduce #2") && contains(e.what(), "gave up on collective #2")) << e.what();
    }
    // The communicator is unusable now, and says why.
    try {
      comm->barrier()->wait();
      ADD_FAILURE() << "expected CommError";
    } catch (const CommError& e) {
      EXPECT_TRUE(contains(e.what(), "unusable after an earlier failure")) << e.what();
    }
  }
  g_session->world_barrier();
  if (rank == 1) {
    // Arriving late: through MPI the abandoned collectives of the others complete with it; through
    // shared memory rank 1 sees at once that they gave up.
    try {
      comm->all_reduce(&x, &x, 1, DType::f32, {ReduceOp::sum, 5000ms})->wait();
      EXPECT_EQ(GetParam(), MpiOptions::Algorithm::native);
    } catch (const CommError& e) {
      EXPECT_EQ(GetParam(), MpiOptions::Algorithm::shared_memory) << e.what();
      EXPECT_TRUE(contains(e.what(), "gave up on collective #2")) << e.what();
    }
  }
  g_session->world_barrier();
  // At least one rank reported the timeout itself (the others may have reported the give-up).
  auto fresh = make_mpi_world_communicator("check");
  int any = timed_out;
  fresh->all_reduce(&any, &any, 1, DType::i32, {ReduceOp::max})->wait();
  EXPECT_EQ(any, 1);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, MpiTimeout,
                         ::testing::Values(MpiOptions::Algorithm::shared_memory, MpiOptions::Algorithm::native),
                         [](const auto& info) {
                           return std::string(info.param == MpiOptions::Algorithm::native ? "native" : "shm");
                         });

// A wait() shorter than the collective's timeout gives up alone; the collective completes later.
TEST(MpiTimeoutWait, ShortWaitLeavesTheCollectiveRunning) {
  const int rank = g_session->world_rank(), size = g_session->world_size();
  if (size < 2) GTEST_SKIP() << "needs 2 or more ranks";
  auto comm = make_mpi_world_communicator();
  float x = 1.0f;
  if (rank == 0) {
    WorkPtr w = comm->all_reduce(&x, &x, 1, DType::f32);
    try {
      w->wait(50ms);
      ADD_FAILURE() << "rank 1 has not arrived yet";
    } catch (const TimeoutError& e) {
      EXPECT_TRUE(contains(e.what(), "only this wait() gave up")) << e.what();
    }
    g_session->world_barrier();
    w->wait();
  } else {
    g_session->world_barrier();
    comm->all_reduce(&x, &x, 1, DType::f32)->wait();
  }
  EXPECT_EQ(x, static_cast<float>(size));
}

}  // namespace
}  // namespace cohort::parallel

int main(int argc, char** argv) { return cohort::parallel::testing::run_mpi_tests(argc, argv); }
