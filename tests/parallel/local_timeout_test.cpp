// Timeouts on the local backend: the report names the collective, its sequence number and the
// ranks that never arrived; the world is aborted afterwards; a short wait() alone aborts nothing.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "cohort/parallel/comm/local_backend.h"

namespace cohort::parallel {
namespace {

using namespace std::chrono_literals;

// Rank 1 finishes all_reduce #1, then skips #2; the others time out in #2 and say so.
TEST(LocalTimeout, ReportNamesTheRankThatNeverArrived) {
  LocalWorld world(4, "world");
  std::vector<std::string> reports(4);
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < 4; ++r) {
    threads.emplace_back([&, r] {
      auto comm = world.communicator(r);
      float x = 1.0f;
      comm->all_reduce(&x, &x, 1, DType::f32)->wait();  // #1, everyone
      if (r == 1) {
        while (done.load() < 3) std::this_thread::sleep_for(1ms);  // skips #2
        return;
      }
      try {
        comm->all_reduce(&x, &x, 1, DType::f32, {ReduceOp::sum, 200ms})->wait();
      } catch (const CommError& e) {
        reports[r] = e.what();
      }
      ++done;
    });
  }
  for (auto& t : threads) t.join();
  bool someone_timed_out = false;
  for (int r : {0, 2, 3}) {
    SCOPED_TRACE(reports[r]);
    EXPECT_NE(reports[r].find("all_reduce #2"), std::string::npos);
    EXPECT_NE(reports[r].find("rank 1 never arrived (it finished all_reduce #1 and has not started #2)"),
              std::string::npos);
    EXPECT_NE(reports[r].find("ranks 0, 2, 3 arrived"), std::string::npos);
    someone_timed_out |= reports[r].find("timed out after 200 ms") != std::string::npos;
  }
  EXPECT_TRUE(someone_timed_out);
  // The world is aborted: rank 1 arriving now fails at once, quoting the report.
  float y = 0;
  try {
    world.communicator(1)->barrier();
    FAIL() << "expected CommError";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("was aborted"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank 1 never arrived"), std::string::npos) << e.what();
  }
  (void)y;
}

TEST(LocalTimeout, TimeoutErrorIsACommError) {
  LocalWorld world(2);
  auto comm = world.communicator(0);
  EXPECT_THROW(comm->barrier({50ms})->wait(), TimeoutError);
}

TEST(LocalTimeout, DifferentCollectivesWithTheSameNumberAreReported) {
  LocalWorld world(2, "w");
  std::string report;
  std::thread other([&] {
    float x = 0;
    try {
      world.communicator(1)->broadcast(&x, &x, 1, DType::f32, {0, 200ms})->wait();
    } catch (const CommError&) {
    }
  });
  try {
    world.communicator(0)->barrier({100ms})->wait();
  } catch (const CommError& e) {
    report = e.what();
  }
  other.join();
  // Both arrived at #1, with different collectives: the slot reports the mismatch.
  EXPECT_TRUE(report.find("does not match across ranks") != std::string::npos ||
              report.find("rank 1 called broadcast as #1") != std::string::npos)
      << report;
}

// A wait() shorter than the collective's timeout gives up alone: waiting again succeeds.
TEST(LocalTimeout, ShortWaitLeavesTheCollectiveRunning) {
  LocalWorld world(2);
  float a = 1, b = 2;
  auto c0 = world.communicator(0), c1 = world.communicator(1);
  WorkPtr w0 = c0->all_reduce(&a, &a, 1, DType::f32);
  EXPECT_FALSE(w0->is_completed());
  EXPECT_THROW(w0->wait(20ms), TimeoutError);
  WorkPtr w1 = c1->all_reduce(&b, &b, 1, DType::f32);
  w0->wait();
  w1->wait();
  EXPECT_EQ(a, 3.0f);
  EXPECT_EQ(b, 3.0f);
}

TEST(LocalTimeout, RecvReportSaysHowManyMessagesArrived) {
  LocalWorld world(2, "p2p");
  auto c0 = world.communicator(0), c1 = world.communicator(1);
  int v = 5;
  c1->send(&v, 1, DType::i32, 0, {3})->wait();
  int got = 0;
  c0->recv(&got, 1, DType::i32, 1, {3})->wait();
  EXPECT_EQ(got, 5);
  try {
    c0->recv(&got, 1, DType::i32, 1, {3, 50ms})->wait();
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("recv #2 from rank 1 (tag 3)"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("has sent 1 message(s)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cohort::parallel
