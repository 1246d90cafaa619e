#pragma once
// Stand-alone mode: the parent lends its own stdout and stderr to its ranks.
//
// mpirun forwards its ranks' output in chunks as it reads them, not in lines, so a burst of output
// from one rank can be cut in two around another rank's ("[0] PATH=/us[1] HOME=/root\nr/bin").
// Instead, the parent listens on a unix socket in its run directory and hands each rank's
// cohort-run duplicates of its fds 1 and 2 (SCM_RIGHTS); the rank writes its prefixed lines there
// directly, each batch of whole lines in one write() of at most PIPE_BUF bytes, which POSIX makes
// atomic on a pipe. Same open file descriptions, so a file, pipe or terminal behaves as if the
// parent had written. If lending fails the ranks keep mpirun's forwarding.

#include <string>
#include <thread>

namespace cohort::run {

class StdioLender {
 public:
  // Listens on socket_path and serves every rank that connects, until destroyed.
  explicit StdioLender(const std::string& socket_path);
  ~StdioLender();
  StdioLender(const StdioLender&) = delete;
  StdioLender& operator=(const StdioLender&) = delete;
  bool listening() const { return listen_fd_ >= 0; }

 private:
  int listen_fd_ = -1;
  std::thread server_;
};

// In a rank: replaces this process's fds 1 and 2 with the parent's. False (and nothing changed)
// when the parent cannot be reached.
bool borrow_stdio(const std::string& socket_path);

}  // namespace cohort::run
