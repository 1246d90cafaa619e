// Status queries between ranks that do not share memory: when a collective times out, its rank
// asks every peer "where are you?" over a communicator of its own, and each peer's progress
// thread (or whoever is polling) answers with its PeerStatus. A peer that does not answer within
// the budget is reported as unknown (it exited, or is stuck somewhere that does not poll).
#pragma once

#include <mpi.h>

#include <functional>
#include <mutex>
#include <vector>

#include "../arrival_report-impl.h"

namespace cohort::parallel::detail {

class PeerQuery {
 public:
  PeerQuery(MPI_Comm ctrl, int rank, int size, std::function<PeerStatus()> mine);

  // Answers the queries that arrived (never blocks). Safe to call from any thread.
  void serve();
  // Every rank's status (this rank's own from `mine`), waiting at most `budget` for answers.
  std::vector<PeerStatus> query_all(Milliseconds budget);

 private:
  MPI_Comm ctrl_;
  int rank_, size_;
  std::function<PeerStatus()> mine_;
  std::mutex serve_mutex_;  // one server at a time, so one query is answered once
  std::mutex query_mutex_;  // one query at a time from this rank
  uint32_t next_query_ = 0;
};

}  // namespace cohort::parallel::detail
