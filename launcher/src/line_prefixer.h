#pragma once
// Turns a byte stream into whole lines, each with a prefix ("[3] "), ready to be written with one
// write() so that lines from different ranks never interleave mid-line.

#include <cstddef>
#include <string>
#include <string_view>

namespace cohort::run {

class LinePrefixer {
 public:
  // A line longer than max_line bytes is cut there (the rest continues on a new prefixed line),
  // so a program that never writes '\n' cannot make the launcher buffer without bound. The
  // default keeps every prefixed line within PIPE_BUF, the most one write() keeps in one piece.
  explicit LinePrefixer(std::string prefix, std::size_t max_line = 0)
      : prefix_(std::move(prefix)),
        max_line_(max_line ? max_line : kAtomicWrite - prefix_.size() - 1) {}

  static constexpr std::size_t kAtomicWrite = 4096;  // PIPE_BUF on Linux

  // The complete lines `bytes` finishes, prefixed, newline-terminated; may be empty.
  std::string feed(std::string_view bytes);
  // At end of stream: the unterminated rest as a final line (with a '\n'), or "".
  std::string finish();

 private:
  std::string prefix_;
  std::size_t max_line_;
  std::string partial_;
};

}  // namespace cohort::run
