// What a rank knows about its peers when a collective times out, and the report built from it:
//   mpi group 'world': all_reduce #2 timed out after 1000 ms on rank 0 of 4: rank 1 never arrived
//   (it finished all_reduce #1 and has not started #2); ranks 0, 2, 3 arrived
// Every backend fills PeerStatus its own way (shared memory, a query over MPI, the store).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cohort/core/error.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel::detail {

using ::cohort::detail::str_cat;

struct PeerStatus {
  bool known = false;            // false: the peer did not answer (exited, or stuck outside cohort)
  uint64_t entered = 0;          // sequence number of the last collective it started (0: none)
  Collective entered_kind = Collective::barrier;
  uint64_t completed = 0;        // ... and of the last one it finished
  uint64_t failed = 0;           // the collective it gave up on, 0 if none
};

struct ReportContext {
  const char* backend;     // "mpi"
  std::string group;       // "world"
  int rank = 0;
  int size = 1;
};

// "<backend> group '<name>': <kind> #<seq> timed out after <ms> ms on rank r of n: ..." with the
// ranks that never arrived (and where each one is), the ranks that called a different collective
// with this number, and the ranks that arrived.
std::string timeout_report(const ReportContext& ctx, Collective kind, uint64_t seq, Milliseconds waited,
                           const std::vector<PeerStatus>& peers);

// One peer, in words: "it finished all_reduce #1 and has not started #2".
std::string describe_peer(const PeerStatus& peer, uint64_t seq);

// "1, 2, 5"
std::string rank_list(const std::vector<int>& ranks);

// Packs kind and sequence number in one word, so a peer reads both atomically.
inline uint64_t pack_entered(uint64_t seq, Collective kind) { return (seq << 8) | static_cast<uint8_t>(kind); }
inline uint64_t unpack_seq(uint64_t packed) { return packed >> 8; }
inline Collective unpack_kind(uint64_t packed) { return static_cast<Collective>(packed & 0xff); }

}  // namespace cohort::parallel::detail
