#include "line_prefixer.h"

#include <algorithm>

namespace cohort::run {

std::string LinePrefixer::feed(std::string_view bytes) {
  std::string out;
  while (!bytes.empty()) {
    std::size_t nl = bytes.find('\n');
    std::size_t room = max_line_ > partial_.size() ? max_line_ - partial_.size() : 0;
    if (nl == std::string_view::npos || nl > room) {
      // No end of line in reach: keep what fits, cut the line if it is full.
      std::size_t take = std::min(bytes.size(), room);
      partial_.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (partial_.size() >= max_line_) {
        out += prefix_ + partial_ + "\n";
        partial_.clear();
      }
      continue;
    }
    out += prefix_;
    out += partial_;
    out.append(bytes.substr(0, nl + 1));
    partial_.clear();
    bytes.remove_prefix(nl + 1);
  }
  return out;
}

std::string LinePrefixer::finish() {
  if (partial_.empty()) return "";
  std::string out = prefix_ + partial_ + "\n";
  partial_.clear();
  return out;
}

}  // namespace cohort::run
