#include "process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cerrno>
#include <cstring>
#include <string>

#include "failure.h"
#include "line_prefixer.h"

namespace cohort::run {
namespace {

constexpr int kForwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};

std::string errno_text(int err) { return std::strerror(err); }

// The signals that ask a program to stop; a program that ends after one was not "failing".
bool is_stop_signal(int sig) { return sig == SIGINT || sig == SIGTERM || sig == SIGHUP; }

// Writes everything, retrying short writes; a closed reader (EPIPE, e.g. `| head`) drops the rest
// of that stream rather than stopping the program.
void write_all(int fd, const std::string& data, bool& broken) {
  std::size_t done = 0;
  while (!broken && done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      broken = true;
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

// In the forked child, before exec: only async-signal-safe calls, and _exit on failure with the
// errno sent through `report` (close-on-exec, so a successful exec closes it empty).
[[noreturn]] void exec_child(const ChildSpec& spec, char* const* argv, char* const* envp,
                             int out_fd, int err_fd, int report, pid_t parent,
                             const sigset_t& mask) {
  auto die = [&](int err) {
    ssize_t ignored = ::write(report, &err, sizeof err);
    (void)ignored;
    _exit(127);
  };
  if (spec.own_process_group) setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, spec.parent_death_signal);
  if (getppid() != parent) _exit(127);  // cohort-run died before prctl took effect
  signal(SIGPIPE, SIG_DFL);             // SIG_IGN would survive exec
  sigprocmask(SIG_SETMASK, &mask, nullptr);
  if (out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0) die(errno);
  if (err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0) die(errno);
  if (!spec.cpus.empty()) {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : spec.cpus) CPU_SET(c, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die(errno);
  }
  execvpe(argv[0], argv, envp);
  die(errno);
  _exit(127);  // not reached: die() exits, but a lambda cannot say [[noreturn]]
}

// Whole lines, in batches of at most PIPE_BUF bytes: each batch is one write(), which POSIX keeps
// in one piece on a pipe even when other ranks write to the same one (stand-alone mode).
void write_lines(int fd, const std::string& text, bool& broken) {
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = start;
    for (;;) {
      std::size_t nl = text.find('\n', end);
      std::size_t next = nl == std::string::npos ? text.size() : nl + 1;
      if (end > start && next - start > PIPE_BUF) break;
      end = next;
      if (end == text.size()) break;
    }
    write_all(fd, text.substr(start, end - start), broken);
    start = end;
  }
}

}  // namespace

SignalCatcher::SignalCatcher() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : kForwarded) sigaddset(&set, s);
  sigaddset(&set, SIGCHLD);
  sigprocmask(SIG_BLOCK, &set, &old_mask_);
  fd_ = signalfd(-1, &set, SFD_CLOEXEC);
  if (fd_ < 0) throw std::runtime_error("signalfd failed: " + errno_text(errno));
  signal(SIGPIPE, SIG_IGN);  // a closed stdout must not kill the launcher (see write_all)
}

SignalCatcher::~SignalCatcher() {
  if (fd_ >= 0) close(fd_);
  sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
}

Child spawn(const ChildSpec& spec, const SignalCatcher& signals) {
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  int out_fd = -1, err_fd = -1;
  if (spec.output == ChildSpec::Output::pipe) {
    if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0)
      throw SpawnError("cannot create pipes: " + errno_text(errno));
    out_fd = out_pipe[1];
    err_fd = err_pipe[1];
  } else if (spec.output == ChildSpec::Output::files) {
    for (auto [path, fd] : {std::pair{&spec.stdout_path, &out_fd}, {&spec.stderr_path, &err_fd}}) {
      *fd = open(path->c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (*fd < 0) throw SpawnError("cannot open log file " + *path + ": " + errno_text(errno));
    }
  }
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) throw SpawnError("cannot create a pipe: " + errno_text(errno));

  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) throw SpawnError("fork failed: " + errno_text(errno));
  if (pid == 0)
    exec_child(spec, argv.data(), envp.data(), out_fd, err_fd, report[1], parent,
               signals.old_mask());

  if (spec.own_process_group) setpgid(pid, pid);  // also here: no race with a quick kill(-pid)
  for (int fd : {out_fd, err_fd, report[1]})
    if (fd >= 0) close(fd);
  int err = 0;
  ssize_t n;
  do n = read(report[0], &err, sizeof err); while (n < 0 && errno == EINTR);
  close(report[0]);
  if (n == static_cast<ssize_t>(sizeof err)) {
    waitpid(pid, nullptr, 0);
    for (int fd : {out_pipe[0], err_pipe[0]})
      if (fd >= 0) close(fd);
    throw SpawnError("cannot start '" + spec.argv[0] + "': " + errno_text(err));
  }
  Child child;
  child.pid = pid;
  child.own_process_group = spec.own_process_group;
  child.out = out_pipe[0];
  child.err = err_pipe[0];
  return child;
}

// One loop over three inputs: the signalfd (forward INT/TERM/HUP/USR1/USR2, reap on CHLD) and the
// program's two pipes (prefix and pass on each complete line). Once the program has ended, the
// pipes are drained until both are closed, or until they stay quiet for 200 ms: a background
// process the program left behind may hold them open forever.
SuperviseResult supervise(Child& child, SignalCatcher& signals, const SuperviseOptions& options) {
  SuperviseResult result;
  bool ended = false;
  bool broken[2] = {false, false};
  int* pipes[2] = {&child.out, &child.err};
  LinePrefixer* prefixers[2] = {options.out_prefix, options.err_prefix};
  char buf[65536];

  auto close_pipe = [&](int k) {
    if (prefixers[k]) write_lines(k + 1, prefixers[k]->finish(), broken[k]);
    close(*pipes[k]);
    *pipes[k] = -1;
  };

  while (!ended || child.out >= 0 || child.err >= 0) {
    pollfd fds[3] = {{signals.fd(), POLLIN, 0}, {child.out, POLLIN, 0}, {child.err, POLLIN, 0}};
    int ready = poll(fds, 3, ended ? 200 : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {  // ended, and the pipes were quiet for 200 ms
      for (int k = 0; k < 2; ++k)
        if (*pipes[k] >= 0) close_pipe(k);
      break;
    }
    if (fds[0].revents & POLLIN) {
      signalfd_siginfo info;
      if (read(signals.fd(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        int sig = static_cast<int>(info.ssi_signo);
        if (sig == SIGCHLD) {
          int status = 0;
          if (!ended && waitpid(child.pid, &status, WNOHANG) == child.pid) {
            ended = true;
            result.wait_status = status;
            result.ended_ns = now_ns();
          }
        } else {
          if (!ended && options.forward)
            options.forward(sig, info.ssi_code == SI_KERNEL);
          else if (!ended)
            kill(child.own_process_group ? -child.pid : child.pid, sig);
          if (is_stop_signal(sig)) result.stop_signal = sig;
        }
      }
    }
    for (int k = 0; k < 2; ++k) {
      if (*pipes[k] < 0 || !(fds[k + 1].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(*pipes[k], buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        close_pipe(k);
        continue;
      }
      std::string_view bytes(buf, static_cast<std::size_t>(n));
      if (prefixers[k])
        write_lines(k + 1, prefixers[k]->feed(bytes), broken[k]);
      else
        write_all(k + 1, std::string(bytes), broken[k]);
    }
  }
  // srun (and any launcher that signals the whole process tree) may stop the program before
  // cohort-run's own copy of the signal arrives: a program that failed gets a moment to be
  // explained by a stop request before it counts as a failure.
  if (result.stop_signal == 0 && result.wait_status != 0 && options.stop_grace_ms > 0) {
    pollfd p{signals.fd(), POLLIN, 0};
    auto deadline = now_ns() + static_cast<std::int64_t>(options.stop_grace_ms) * 1000000;
    for (std::int64_t left = deadline - now_ns(); left > 0 && result.stop_signal == 0;
         left = deadline - now_ns()) {
      if (poll(&p, 1, static_cast<int>(left / 1000000) + 1) <= 0) continue;
      signalfd_siginfo info;
      if (read(signals.fd(), &info, sizeof info) == static_cast<ssize_t>(sizeof info) &&
          is_stop_signal(static_cast<int>(info.ssi_signo)))
        result.stop_signal = static_cast<int>(info.ssi_signo);
    }
  }
  return result;
}

}  // namespace cohort::run
