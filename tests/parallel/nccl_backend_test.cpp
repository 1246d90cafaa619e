// The nccl backend where there is no GPU (this test suite's usual home): it still compiles and
// links, and fails at construction with a message that says why and what to do. Plus the status
// board its timeout reports come from.
#include <gtest/gtest.h>

#include <memory>

#include "cohort/parallel/comm/local_backend.h"
#include "cohort/parallel/comm/mpi_backend.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "status_board-impl.h"

namespace cohort::parallel {
namespace {

TEST(NcclBackend, WithoutAGpuConstructionSaysWhy) {
  if (!nccl_backend_built()) GTEST_SKIP() << "cohort was built without NCCL";
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present; nccl_gpu_test covers the backend";
  EXPECT_FALSE(cuda_unavailable_reason().empty());
  LocalWorld world(1);
  auto bootstrap = world.communicator(0);
  try {
    make_nccl_communicator(*bootstrap, 0);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {
    EXPECT_NE(std::string(e.what()).find("no usable GPU"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("use the mpi backend"), std::string::npos) << e.what();
  }
  EXPECT_THROW(make_nccl_communicator(std::make_shared<HashStore>(), 0, 1, 0), DeviceError);
  EXPECT_EQ(bootstrap->last_seq(), 0u);  // failed before any collective, so no rank is left waiting
}

TEST(NcclBackend, AWorldOfOneNeedsNoRendezvous) {
  if (!nccl_backend_built()) GTEST_SKIP() << "cohort was built without NCCL";
  if (cuda_device_count() > 0) GTEST_SKIP() << "a GPU is present; nccl_gpu_test covers the backend";
  ProcessGroupConfig c;
  c.backend = "nccl";
  c.rank = 0;
  c.world_size = 1;  // no master_addr/port: the GPU machine's single-rank run
  ASSERT_FALSE(MpiSession::active());  // no MPI job here: the nccl group is built without a host side
  try {
    make_process_group(c);
    FAIL() << "expected DeviceError";
  } catch (const DeviceError& e) {  // it got as far as looking for the GPU, not asking for a master
    EXPECT_NE(std::string(e.what()).find("no usable GPU"), std::string::npos) << e.what();
  }
}

TEST(StatusBoard, ReportsWhatRanksPublished) {
  auto store = std::make_shared<HashStore>();
  detail::StatusBoard r0(store, "b", 0, 3), r1(store, "b", 1, 3);
  detail::PeerStatus s;
  s.known = true;
  s.entered = 7, s.entered_kind = Collective::all_gather, s.completed = 7;
  r1.publish(s);
  s.entered = 8, s.entered_kind = Collective::all_reduce, s.completed = 7;
  r0.publish(s);
  auto all = r0.read_all();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_TRUE(all[0].known && all[1].known);
  EXPECT_FALSE(all[2].known);  // never published
  EXPECT_EQ(all[1].entered_kind, Collective::all_gather);
  const std::string report =
      detail::timeout_report({"nccl", "g", 0, 3}, Collective::all_reduce, 8, Milliseconds(100), all);
  EXPECT_NE(report.find("ranks 1, 2 never arrived"), std::string::npos) << report;
  EXPECT_NE(report.find("rank 1: it finished all_gather #7 and has not started #8"), std::string::npos) << report;
  EXPECT_NE(report.find("rank 2: it did not answer"), std::string::npos) << report;
}

}  // namespace
}  // namespace cohort::parallel
