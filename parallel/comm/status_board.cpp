#include "status_board-impl.h"

#include <sstream>

namespace cohort::parallel::detail {

StatusBoard::StatusBoard(std::shared_ptr<Store> store, std::string prefix, int rank, int size)
    : store_(std::move(store)), prefix_(std::move(prefix)), rank_(rank), size_(size) {}

std::string StatusBoard::encode(const PeerStatus& s) {
  std::ostringstream out;
  out << s.entered << ' ' << static_cast<int>(s.entered_kind) << ' ' << s.completed << ' ' << s.failed;
  return out.str();
}

PeerStatus StatusBoard::decode(const std::string& text) {
  PeerStatus s;
  std::istringstream in(text);
  int kind = 0;
  if (in >> s.entered >> kind >> s.completed >> s.failed) {
    s.known = true;
    s.entered_kind = static_cast<Collective>(kind);
  }
  return s;
}

void StatusBoard::publish(const PeerStatus& mine) { store_->set(key(rank_), encode(mine)); }

std::vector<PeerStatus> StatusBoard::read_all() {
  std::vector<PeerStatus> all(size_);
  for (int r = 0; r < size_; ++r) {
    try {
      if (store_->check({key(r)})) all[r] = decode(store_->get(key(r), Milliseconds(1000)));
    } catch (const CommError&) {
      // the store itself is gone: report what we have
    }
  }
  return all;
}

}  // namespace cohort::parallel::detail
