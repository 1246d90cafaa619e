#pragma once
// Starting the program and staying with it until it ends: its output through the launcher,
// signals forwarded to it, its wait status back.

#include <sys/types.h>

#include <csignal>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cohort::run {

class LinePrefixer;

// The program could not be started (exec failed): the message names it and says why.
class SpawnError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Blocks the signals cohort-run forwards (SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2) and SIGCHLD
// and receives them through a signalfd, so that the supervision loop sees them as ordinary input
// and none is lost between fork and poll. Restores the old mask when destroyed.
class SignalCatcher {
 public:
  SignalCatcher();
  ~SignalCatcher();
  SignalCatcher(const SignalCatcher&) = delete;
  SignalCatcher& operator=(const SignalCatcher&) = delete;
  int fd() const { return fd_; }
  const sigset_t& old_mask() const { return old_mask_; }

 private:
  int fd_ = -1;
  sigset_t old_mask_;
};

struct ChildSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH
  std::vector<std::string> env;   // NAME=value, the program's whole environment
  std::vector<int> cpus;          // its CPU affinity; empty: inherited
  enum class Output { inherit, pipe, files } output = Output::inherit;
  std::string stdout_path, stderr_path;  // Output::files
  // The program leads a process group of its own, so a forwarded signal reaches everything it
  // started, and a terminal's Ctrl-C reaches only cohort-run (which forwards it once).
  bool own_process_group = true;
  int parent_death_signal = SIGKILL;  // sent to the program if cohort-run itself dies
};

struct Child {
  pid_t pid = -1;
  bool own_process_group = true;
  int out = -1, err = -1;  // read ends of its stdout/stderr pipes (Output::pipe)
};

Child spawn(const ChildSpec& spec, const SignalCatcher& signals);

struct SuperviseOptions {
  LinePrefixer* out_prefix = nullptr;  // with Output::pipe: where each stream's lines go
  LinePrefixer* err_prefix = nullptr;
  // Where a received signal goes; by default to the child's process group. `from_terminal`: the
  // terminal sent it to the whole foreground group (si_code SI_KERNEL), so a child that shares
  // cohort-run's group has it already.
  std::function<void(int sig, bool from_terminal)> forward;
  // When the program ends unsuccessfully with no stop signal seen yet, wait this long for one
  // (see supervise()).
  int stop_grace_ms = 300;
};

struct SuperviseResult {
  int wait_status = 0;
  std::int64_t ended_ns = 0;       // when the program was seen to end
  int stop_signal = 0;  // the last SIGINT/SIGTERM/SIGHUP cohort-run received for this program
};

// Runs until the program has ended and its output is drained.
SuperviseResult supervise(Child& child, SignalCatcher& signals, const SuperviseOptions& options);

}  // namespace cohort::run
