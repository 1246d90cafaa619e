// The meeting place of a local world: one slot per collective sequence number, one mailbox per
// (src, dst, tag), and what each rank is doing (for timeout reports). Guarded by one mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "../arrival_report-impl.h"
#include "cohort/core/dtype.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel::detail {

// One collective, from the first rank's arrival until the last rank copied its result out.
struct LocalSlot {
  Collective kind = Collective::barrier;
  DType dtype = DType::f32;
  int64_t count = 0;  // per rank for all_gather/reduce_scatter
  ReduceOp op = ReduceOp::sum;
  int root = 0;
  int first_rank = -1;                   // whose arguments the others must match
  int arrived = 0;
  std::vector<std::vector<char>> inputs;  // a copy of each rank's input, taken on arrival
  std::vector<char> result;               // what every rank reads its output from
  bool ready = false;
  std::string error;  // set when the ranks passed arguments that do not match
  int collected = 0;
};

struct LocalState {
  LocalState(int size, std::string name) : size(size), name(std::move(name)), ranks(size) {}

  const int size;
  const std::string name;
  std::mutex mutex;
  std::condition_variable changed;
  std::map<uint64_t, LocalSlot> slots;
  std::vector<PeerStatus> ranks;  // what each rank is doing, for timeout reports
  bool aborted = false;
  std::string abort_reason;
  std::map<std::tuple<int, int, int>, std::deque<std::vector<char>>> mailboxes;  // (src, dst, tag)
  std::map<std::tuple<int, int, int>, uint64_t> sent;                             // messages ever sent
  std::map<std::pair<uint64_t, int>, std::shared_ptr<LocalState>> children;        // (split seq, color)
  std::map<std::pair<uint64_t, int>, int> child_pickups;                          // members that took it
};

}  // namespace cohort::parallel::detail
