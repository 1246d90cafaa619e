#include "peer_query-impl.h"

#include <chrono>
#include <thread>

#include "../deadline-impl.h"
#include "mpi_check-impl.h"

namespace cohort::parallel::detail {
namespace {

constexpr int kQueryTag = 1;
constexpr int kReplyTagBase = 16;  // + query id mod 1024, so a late answer never matches a newer query

void pack(const PeerStatus& s, uint64_t out[4]) {
  out[0] = s.entered == 0 ? 0 : pack_entered(s.entered, s.entered_kind);
  out[1] = s.completed;
  out[2] = s.failed;
  out[3] = 1;
}

PeerStatus unpack(const uint64_t in[4]) {
  PeerStatus s;
  s.known = in[3] == 1;
  s.entered = unpack_seq(in[0]);
  s.entered_kind = unpack_kind(in[0]);
  s.completed = in[1];
  s.failed = in[2];
  return s;
}

}  // namespace

PeerQuery::PeerQuery(MPI_Comm ctrl, int rank, int size, std::function<PeerStatus()> mine)
    : ctrl_(ctrl), rank_(rank), size_(size), mine_(std::move(mine)) {}

void PeerQuery::serve() {
  std::lock_guard<std::mutex> lock(serve_mutex_);
  for (;;) {
    int pending = 0;
    MPI_Status status;
    if (MPI_Iprobe(MPI_ANY_SOURCE, kQueryTag, ctrl_, &pending, &status) != MPI_SUCCESS || !pending) return;
    uint32_t id = 0;
    MPI_Recv(&id, 1, MPI_UINT32_T, status.MPI_SOURCE, kQueryTag, ctrl_, MPI_STATUS_IGNORE);
    uint64_t reply[4];
    pack(mine_(), reply);
    // 32 bytes go out eagerly: the send returns at once even if the asker is gone.
    MPI_Send(reply, 4, MPI_UINT64_T, status.MPI_SOURCE, kReplyTagBase + static_cast<int>(id % 1024), ctrl_);
  }
}

std::vector<PeerStatus> PeerQuery::query_all(Milliseconds budget) {
  std::lock_guard<std::mutex> lock(query_mutex_);
  std::vector<PeerStatus> peers(size_);
  peers[rank_] = mine_();
  peers[rank_].known = true;
  const uint32_t id = next_query_++;
  const int reply_tag = kReplyTagBase + static_cast<int>(id % 1024);
  std::vector<uint64_t> replies(4 * size_, 0);
  std::vector<MPI_Request> recvs(size_, MPI_REQUEST_NULL);
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    MPI_Irecv(&replies[4 * r], 4, MPI_UINT64_T, r, reply_tag, ctrl_, &recvs[r]);
    uint32_t query = id;
    MPI_Send(&query, 1, MPI_UINT32_T, r, kQueryTag, ctrl_);  // eager, returns at once
  }
  const auto deadline = deadline_after(budget);
  for (;;) {
    serve();  // a peer may be querying us at the same time
    int all = 0;
    MPI_Testall(size_, recvs.data(), &all, MPI_STATUSES_IGNORE);
    if (all || Clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  // Testall completes all or nothing, so each request is settled here: cancelled when no answer
  // came (a cancel that loses the race leaves the answer in place, which Test_cancelled tells).
  for (int r = 0; r < size_; ++r) {
    if (r == rank_) continue;
    if (recvs[r] != MPI_REQUEST_NULL) {
      MPI_Cancel(&recvs[r]);
      MPI_Status status;
      MPI_Wait(&recvs[r], &status);
      int cancelled = 0;
      MPI_Test_cancelled(&status, &cancelled);
      if (cancelled) continue;
    }
    peers[r] = unpack(&replies[4 * r]);
  }
  return peers;
}

}  // namespace cohort::parallel::detail
