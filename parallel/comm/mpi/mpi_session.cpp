// MpiSession: MPI_Init_thread with MPI_THREAD_MULTIPLE, because every MPI communicator runs a
// progress thread that calls MPI while the program's own thread may call it too.
#include <cstdio>

#include "cohort/parallel/comm/mpi_backend.h"
#include "mpi_check-impl.h"

namespace cohort::parallel {

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  COHORT_MPI_CHECK(MPI_Initialized(&initialized));
  int provided = MPI_THREAD_SINGLE;
  if (initialized) {
    COHORT_MPI_CHECK(MPI_Query_thread(&provided));
  } else {
    COHORT_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
    owns_ = true;
  }
  COHORT_CHECK(provided == MPI_THREAD_MULTIPLE, CommError,
               "MPI provides thread level ", provided, " but cohort's mpi backend needs MPI_THREAD_MULTIPLE (",
               MPI_THREAD_MULTIPLE, "): its progress thread calls MPI. Use an MPI built with thread support, or "
               "initialize MPI with MPI_Init_thread(..., MPI_THREAD_MULTIPLE, ...)");
  // Errors come back as codes (and become CommError) instead of aborting the job silently.
  COHORT_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  COHORT_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank_));
  COHORT_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size_));
}

MpiSession::~MpiSession() {
  if (owns_ && active()) MPI_Finalize();
}

bool MpiSession::active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

std::string MpiSession::processor_name() const {
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  COHORT_MPI_CHECK(MPI_Get_processor_name(name, &len));
  return std::string(name, static_cast<size_t>(len));
}

void MpiSession::world_barrier() const { COHORT_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD)); }

bool mpi_backend_built() { return true; }

}  // namespace cohort::parallel
