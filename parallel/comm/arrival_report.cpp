// The timeout report: the one message a user of a hung job needs, naming the collective, its
// sequence number and the ranks that never arrived, with where each of them is instead.
#include <sstream>

#include "arrival_report-impl.h"

namespace cohort::parallel::detail {

std::string rank_list(const std::vector<int>& ranks) {
  std::ostringstream out;
  for (size_t i = 0; i < ranks.size(); ++i) out << (i ? ", " : "") << ranks[i];
  return out.str();
}

std::string describe_peer(const PeerStatus& peer, uint64_t seq) {
  std::ostringstream out;
  if (!peer.known) {
    out << "it did not answer the status query: it exited, or is stuck outside cohort";
  } else if (peer.failed != 0) {
    out << "it gave up on collective #" << peer.failed << " after a timeout or error";
  } else if (peer.entered == 0) {
    out << "it has not started any collective";
  } else if (peer.entered > peer.completed) {
    out << "it is still in " << collective_name(peer.entered_kind) << " #" << peer.entered;
  } else {
    out << "it finished " << collective_name(peer.entered_kind) << " #" << peer.entered << " and has not started #"
        << seq;
  }
  return out.str();
}

std::string timeout_report(const ReportContext& ctx, Collective kind, uint64_t seq, Milliseconds waited,
                           const std::vector<PeerStatus>& peers) {
  std::vector<int> missing, arrived, mismatched;
  for (int r = 0; r < static_cast<int>(peers.size()); ++r) {
    const PeerStatus& p = peers[r];
    if (r == ctx.rank || (p.known && p.entered > seq)) {
      arrived.push_back(r);
    } else if (p.known && p.entered == seq) {
      (p.entered_kind == kind ? arrived : mismatched).push_back(r);
    } else {
      missing.push_back(r);
    }
  }
  std::ostringstream out;
  out << ctx.backend << " group '" << ctx.group << "': " << collective_name(kind) << " #" << seq << " timed out after "
      << waited.count() << " ms on rank " << ctx.rank << " of " << ctx.size;
  const char* sep = ": ";
  if (!missing.empty()) {
    out << sep << (missing.size() == 1 ? "rank " : "ranks ") << rank_list(missing) << " never arrived (";
    for (size_t i = 0; i < missing.size(); ++i) {
      out << (i ? "; " : "") << (missing.size() > 1 ? "rank " + std::to_string(missing[i]) + ": " : "")
          << describe_peer(peers[missing[i]], seq);
    }
    out << ")";
    sep = "; ";
  }
  for (int r : mismatched) {
    out << sep << "rank " << r << " called " << collective_name(peers[r].entered_kind) << " as #" << seq
        << " (the ranks issued collectives in different orders)";
    sep = "; ";
  }
  if (missing.empty() && mismatched.empty()) {
    out << sep << "every rank arrived, but the collective did not complete (a rank is slow or the transport hung)";
  } else {
    out << sep << (arrived.size() == 1 ? "rank " : "ranks ") << rank_list(arrived) << " arrived";
  }
  return out.str();
}

}  // namespace cohort::parallel::detail
