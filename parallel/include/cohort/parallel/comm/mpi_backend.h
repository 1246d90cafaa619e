// The `mpi` backend: collectives on host memory between MPI processes.
//
//   int main(int argc, char** argv) {
//     cohort::parallel::MpiSession mpi(&argc, &argv);   // MPI_Init_thread ... MPI_Finalize
//     auto world = cohort::parallel::make_mpi_world_group();
//     world.all_reduce(t)->wait();
//   }
//
// How it runs. Each communicator has a progress thread, so a large collective proceeds while
// the caller computes (data parallelism overlaps gradient all-reduces with backward). A small
// collective is not handed over (waking a thread costs more than the collective): it runs inside
// the first wait(). When all ranks of the communicator share a node, collectives go through a
// shared-memory segment (each rank reduces its slice of everyone's data, in cache-sized chunks);
// otherwise through MPI's nonblocking collectives. Either way the running collective is polled, so
// its timeout is enforced and a timeout report says which ranks never arrived.
//
// Not thread-safe per communicator: issue its collectives from one thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "cohort/parallel/comm/process_group.h"

namespace cohort::parallel {

// MPI for the lifetime of this object, with MPI_THREAD_MULTIPLE (the progress threads call MPI).
// When MPI is already initialized (by the program) it only checks the thread level and leaves
// finalizing to whoever initialized it. Destroy every communicator before it.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;

  int world_rank() const { return world_rank_; }
  int world_size() const { return world_size_; }
  std::string processor_name() const;  // the host name MPI reports
  void world_barrier() const;          // MPI_Barrier on MPI_COMM_WORLD, outside any communicator

  static bool active();  // MPI initialized and not finalized

 private:
  bool owns_ = false;
  int world_rank_ = 0;
  int world_size_ = 1;
};

struct MpiOptions {
  enum class Algorithm {
    automatic,      // shared memory when every rank is on this node, else MPI's collectives
    shared_memory,  // the shared-memory segment (throws if the ranks span nodes)
    native,         // MPI's nonblocking collectives (MPI_Iallreduce, ...)
  };
  Algorithm algorithm = Algorithm::automatic;
  // Bytes each rank stages per pipeline step in shared memory. Larger steps mean fewer
  // synchronisations, smaller ones a working set (about 2 x (ranks + 1) steps) that stays in cache;
  // 512 KiB measured best for 2 ranks on the project's machines (256 KiB and 768 KiB were 5-20%
  // slower at 16-256 MB).
  size_t chunk_bytes = 512 * 1024;
  // All-reduces up to this size combine whole buffers in one step; larger ones reduce-scatter
  // then all-gather chunk by chunk.
  size_t one_shot_bytes = 32 * 1024;
  // All-reduces at least this large write their output with non-temporal stores (around the
  // caches, saving the read of every output line); 0 turns that off.
  size_t streaming_bytes = 8 * 1024 * 1024;
  // Collectives at least this large are handed to the progress thread as soon as they are issued;
  // smaller ones run in the first wait() (or the next time the progress thread wakes).
  size_t async_bytes = 256 * 1024;
};

// The world: every MPI process (MPI_COMM_WORLD, duplicated). Needs an MpiSession.
std::shared_ptr<Communicator> make_mpi_world_communicator(const std::string& name = "world",
                                                          const MpiOptions& options = {});
ProcessGroup make_mpi_world_group(const std::string& name = "world", const MpiOptions& options = {});

// Whether this build has the mpi backend (COHORT_WITH_MPI); without it the functions above throw.
bool mpi_backend_built();

}  // namespace cohort::parallel
