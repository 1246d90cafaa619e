// main() for the MPI test binaries: MPI for the whole run (MpiSession), gtest's full output on
// rank 0 and only failures, prefixed with the rank, elsewhere.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>

#include "cohort/parallel/comm/mpi_backend.h"

namespace cohort::parallel::testing {

inline MpiSession* g_session = nullptr;

class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& r) override {
    if (r.failed()) {
      std::fprintf(stderr, "[rank %d] %s:%d: Failure\n%s\n", rank_, r.file_name() ? r.file_name() : "?",
                   r.line_number(), r.summary());
    }
  }

 private:
  int rank_;
};

inline int run_mpi_tests(int argc, char** argv) {
  MpiSession session(&argc, &argv);
  g_session = &session;
  ::testing::InitGoogleTest(&argc, argv);
  if (session.world_rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new FailurePrinter(session.world_rank()));
  }
  const int rc = RUN_ALL_TESTS();
  g_session = nullptr;
  return rc;
}

}  // namespace cohort::parallel::testing
