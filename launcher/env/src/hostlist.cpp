#include "cohort/env/hostlist.h"

#include <cstddef>
#include <string>
#include <vector>

#include "cohort/env/environment.h"

namespace cohort::env {
namespace {

// Past this a list is certainly a mistake (a typo like node[1-100000000]), not a cluster.
constexpr std::size_t kMaxHosts = 1 << 20;

class HostlistParser {
 public:
  HostlistParser(const std::string& list, const std::string& what) : list_(list), what_(what) {}

  std::vector<std::string> expand() {
    if (list_.empty()) fail("it is empty", 0);
    std::vector<std::string> hosts;
    for (const auto& [begin, end] : split_items()) expand_item(begin, end, hosts);
    return hosts;
  }

 private:
  [[noreturn]] void fail(const std::string& why, std::size_t pos) const {
    throw EnvError(what_ + " '" + list_ + "' cannot be parsed: " + why + " (at column " +
                   std::to_string(pos + 1) + "); expected Slurm's hostlist syntax, e.g. "
                   "node[01-04,07],login1");
  }

  // Top-level items: [begin, end) ranges of list_ between commas that are outside brackets.
  std::vector<std::pair<std::size_t, std::size_t>> split_items() const {
    std::vector<std::pair<std::size_t, std::size_t>> items;
    std::size_t start = 0, open = std::string::npos;
    for (std::size_t i = 0; i <= list_.size(); ++i) {
      char c = i < list_.size() ? list_[i] : ',';
      if (c == '[') {
        if (open != std::string::npos) fail("'[' inside brackets", i);
        open = i;
      } else if (c == ']') {
        if (open == std::string::npos) fail("']' without a matching '['", i);
        open = std::string::npos;
      } else if (c == ',' && open == std::string::npos) {
        if (i == start) fail("empty host name", i);
        items.emplace_back(start, i);
        start = i + 1;
      } else if (c == ' ' || c == '\t' || c == '\n') {
        fail("whitespace", i);
      }
    }
    if (open != std::string::npos) fail("'[' is never closed", open);
    return items;
  }

  // One item, e.g. rack[1-2]-n[01,03]: literal pieces and bracket groups, each a list of choices;
  // the hosts are their cartesian product with the leftmost group varying slowest (Slurm's order).
  void expand_item(std::size_t begin, std::size_t end, std::vector<std::string>& hosts) const {
    std::vector<std::vector<std::string>> pieces;
    std::size_t i = begin;
    while (i < end) {
      if (list_[i] == '[') {
        std::size_t close = list_.find(']', i);
        pieces.push_back(expand_ranges(i + 1, close));
        i = close + 1;
      } else {
        std::size_t next = list_.find('[', i);
        if (next == std::string::npos || next > end) next = end;
        pieces.push_back({list_.substr(i, next - i)});
        i = next;
      }
    }
    std::vector<std::string> partial{""};
    for (const auto& choices : pieces) {
      std::vector<std::string> grown;
      if (partial.size() * choices.size() + hosts.size() > kMaxHosts)
        fail("it expands to more than " + std::to_string(kMaxHosts) + " hosts", begin);
      for (const auto& prefix : partial)
        for (const auto& c : choices) grown.push_back(prefix + c);
      partial = std::move(grown);
    }
    hosts.insert(hosts.end(), partial.begin(), partial.end());
  }

  // The inside of one bracket group: "01-04,07" -> 01 02 03 04 07 (zero-padded to lo's width).
  std::vector<std::string> expand_ranges(std::size_t begin, std::size_t end) const {
    if (begin == end) fail("empty brackets", begin);
    std::vector<std::string> out;
    std::size_t start = begin;
    for (std::size_t i = begin; i <= end; ++i) {
      if (i < end && list_[i] != ',') continue;
      if (i == start) fail("empty range", i);
      std::string range = list_.substr(start, i - start);
      std::size_t dash = range.find('-');
      std::string lo = range.substr(0, dash);
      std::string hi = dash == std::string::npos ? lo : range.substr(dash + 1);
      std::size_t width = lo.size();
      unsigned long long a = number(lo, start), b = number(hi, start + lo.size() + 1);
      if (b < a) fail("range " + range + " goes backwards", start);
      if (b - a + out.size() >= kMaxHosts)
        fail("range " + range + " has more than " + std::to_string(kMaxHosts) + " hosts", start);
      for (unsigned long long v = a; v <= b; ++v) {
        std::string digits = std::to_string(v);
        if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
        out.push_back(digits);
      }
      start = i + 1;
    }
    return out;
  }

  unsigned long long number(const std::string& s, std::size_t pos) const {
    if (s.empty() || s.size() > 18) fail("expected a number in brackets, found '" + s + "'", pos);
    for (char c : s)
      if (c < '0' || c > '9') fail("expected a number in brackets, found '" + s + "'", pos);
    return std::stoull(s);
  }

  const std::string& list_;
  const std::string& what_;
};

}  // namespace

std::vector<std::string> expand_hostlist(const std::string& list, const std::string& what) {
  return HostlistParser(list, what).expand();
}

std::vector<int> expand_tasks_per_node(const std::string& list, const std::string& what) {
  auto fail = [&](const std::string& why) -> std::vector<int> {
    throw EnvError(what + " '" + list + "' cannot be parsed: " + why +
                   "; expected Slurm's form, e.g. 4(x2),3");
  };
  std::vector<int> counts;
  std::size_t start = 0;
  if (list.empty()) return fail("it is empty");
  for (std::size_t i = 0; i <= list.size(); ++i) {
    if (i < list.size() && list[i] != ',') continue;
    std::string item = list.substr(start, i - start);
    start = i + 1;
    int repeat = 1;
    std::size_t paren = item.find('(');
    if (paren != std::string::npos) {
      if (item.size() < paren + 4 || item.compare(paren, 2, "(x") != 0 || item.back() != ')')
        return fail("'" + item + "' is not N or N(xM)");
      repeat = parse_int(what + " repeat", item.substr(paren + 2, item.size() - paren - 3), 1,
                         static_cast<int>(kMaxHosts));
      item = item.substr(0, paren);
    }
    int n = parse_int(what + " count", item, 0);
    if (counts.size() + repeat > kMaxHosts) return fail("more than a million nodes");
    counts.insert(counts.end(), repeat, n);
  }
  return counts;
}

}  // namespace cohort::env
