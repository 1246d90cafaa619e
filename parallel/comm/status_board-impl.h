// A status board in a Store: each rank writes where it is (its PeerStatus) under
// "<prefix>/<rank>", and a rank whose collective timed out reads everybody's. Backends whose ranks
// cannot look at each other's memory or answer queries (nccl) use it for their timeout reports; a
// rank that never wrote is reported as unknown.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "arrival_report-impl.h"
#include "cohort/parallel/comm/store.h"

namespace cohort::parallel::detail {

class StatusBoard {
 public:
  StatusBoard(std::shared_ptr<Store> store, std::string prefix, int rank, int size);
  void publish(const PeerStatus& mine);
  // Everyone's last published status (unknown for ranks that never published); never blocks long.
  std::vector<PeerStatus> read_all();

  static std::string encode(const PeerStatus& s);
  static PeerStatus decode(const std::string& text);

 private:
  std::string key(int rank) const { return prefix_ + "/" + std::to_string(rank); }
  std::shared_ptr<Store> store_;
  std::string prefix_;
  int rank_, size_;
};

}  // namespace cohort::parallel::detail
