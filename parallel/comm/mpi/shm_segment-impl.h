// The shared-memory segment of a communicator whose ranks all share a node: per rank, a few
// cache-line-sized counters (what it has staged, reduced and copied out, and which collective it
// is in) and two staging buffers; plus two result buffers everyone reads. Created with shm_open by
// the first rank and unlinked as soon as everyone mapped it, so nothing is left behind on a crash.
#pragma once

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace cohort::parallel::detail {

struct alignas(64) Counter {
  std::atomic<uint64_t> value;
  char pad[64 - sizeof(std::atomic<uint64_t>)];
};

// One rank's counters, each on its own cache line so that ranks polling one do not slow the
// writer of another. in/red/out count pipeline steps (see shm_collectives.cpp); the rest is the
// rank's state for timeout reports.
struct RankCounters {
  Counter in;         // steps whose input this rank has staged
  Counter red;        // steps in which this rank has finished reading others' staging buffers
  Counter out;        // steps whose results this rank has finished reading
  Counter entered;    // pack_entered(seq, kind) of the collective it is in or last started
  Counter completed;  // seq of the last collective it finished
  Counter failed;     // seq of a collective it gave up on (timeout, error), 0 if none
};

class ShmSegment {
 public:
  // Collective over node_comm (whose ranks must be the communicator's, in the same order).
  ShmSegment(MPI_Comm node_comm, int rank, int size, size_t chunk_bytes);
  ~ShmSegment();
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;

  int size() const { return size_; }
  size_t chunk_bytes() const { return chunk_bytes_; }
  RankCounters& counters(int rank) const { return counters_[rank]; }
  char* stage(int rank, int buffer) const { return stage_ + (static_cast<size_t>(rank) * 2 + buffer) * chunk_bytes_; }
  char* result(int buffer) const { return result_ + static_cast<size_t>(buffer) * chunk_bytes_; }

 private:
  int size_;
  size_t chunk_bytes_;
  size_t bytes_ = 0;
  void* base_ = nullptr;
  RankCounters* counters_ = nullptr;
  char* stage_ = nullptr;   // (size, 2, chunk_bytes)
  char* result_ = nullptr;  // (2, chunk_bytes)
};

}  // namespace cohort::parallel::detail
