#include "tcp_store_server-impl.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "../deadline-impl.h"
#include "cohort/parallel/comm/errors.h"

namespace cohort::parallel::detail {
namespace {

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string join_keys(const std::vector<std::string>& keys) {
  std::string s;
  for (const auto& k : keys) s += (s.empty() ? "'" : ", '") + k + "'";
  return s;
}

}  // namespace

TcpStoreServer::TcpStoreServer(int port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  COHORT_CHECK(listen_fd_ >= 0, CommError, "TCP store: socket() failed: ", std::strerror(errno));
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listen_fd_, 1024) != 0) {
    const int err = errno;
    close(listen_fd_);
    COHORT_THROW(CommError, "TCP store: cannot listen on port ", port, ": ", std::strerror(err),
                 err == EADDRINUSE ? " (another job or a previous run holds it; pick another MASTER_PORT)" : "");
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  set_nonblocking(listen_fd_);
  COHORT_CHECK(pipe2(wake_pipe_, O_CLOEXEC) == 0, CommError, "TCP store: pipe() failed: ", std::strerror(errno));
  thread_ = std::thread([this] { loop(); });
}

TcpStoreServer::~TcpStoreServer() {
  char byte = 0;
  (void)!write(wake_pipe_[1], &byte, 1);
  thread_.join();
  for (auto& c : clients_) close(c.first);
  close(listen_fd_);
  close(wake_pipe_[0]);
  close(wake_pipe_[1]);
}

void TcpStoreServer::loop() {
  for (;;) {
    std::vector<pollfd> fds;
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    fds.push_back({listen_fd_, POLLIN, 0});
    for (auto& [fd, c] : clients_) {
      fds.push_back({fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
    }
    int timeout_ms = -1;
    if (!waiters_.empty()) {
      auto nearest = std::min_element(waiters_.begin(), waiters_.end(), [](const Waiter& a, const Waiter& b) {
                       return a.deadline < b.deadline;
                     })->deadline;
      auto ms = std::chrono::duration_cast<Milliseconds>(nearest - Clock::now()).count() + 1;
      timeout_ms = static_cast<int>(std::clamp<int64_t>(ms, 0, 1000 * 1000));
    }
    if (poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) return;
    if (fds[0].revents) return;  // the destructor woke us
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        clients_[fd];
      }
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      const int fd = fds[i].fd;
      if (!clients_.count(fd)) continue;
      if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        char buf[65536];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
          if (n == 0 || (errno != EAGAIN && errno != EINTR)) drop(fd);
          continue;
        }
        Client& c = clients_[fd];
        c.in.append(buf, static_cast<size_t>(n));
        StoreRequest req;
        while (size_t used = decode_request(c.in, req)) {
          c.in.erase(0, used);
          handle(fd, req);
        }
      }
      if (clients_.count(fd) && (fds[i].revents & POLLOUT)) {
        Client& c = clients_[fd];
        ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
        if (n > 0) c.out.erase(0, static_cast<size_t>(n));
        if (n < 0 && errno != EAGAIN && errno != EINTR) drop(fd);
      }
    }
    expire_waiters();
  }
}

void TcpStoreServer::handle(int fd, const StoreRequest& req) {
  switch (req.op) {
    case StoreOp::set:
      if (req.args.size() != 2) return reply(fd, StoreStatus::error, "set needs a key and a value");
      values_[req.args[0]] = req.args[1];
      reply(fd, StoreStatus::ok, "");
      recheck_waiters();
      return;
    case StoreOp::add: {
      if (req.args.size() != 2) return reply(fd, StoreStatus::error, "add needs a key and a delta");
      int64_t value = 0;
      try {
        value = std::stoll(req.args[1]);
        auto it = values_.find(req.args[0]);
        if (it != values_.end()) value += std::stoll(it->second);
      } catch (const std::exception&) {
        return reply(fd, StoreStatus::error, "add on key '" + req.args[0] + "', which does not hold an integer");
      }
      values_[req.args[0]] = std::to_string(value);
      reply(fd, StoreStatus::ok, std::to_string(value));
      recheck_waiters();
      return;
    }
    case StoreOp::check: {
      bool all = std::all_of(req.args.begin(), req.args.end(), [&](const std::string& k) { return values_.count(k); });
      return reply(fd, StoreStatus::ok, all ? "1" : "0");
    }
    case StoreOp::get:
    case StoreOp::wait:
      if (!try_answer(fd, req)) {
        auto deadline = req.timeout_ms < 0 ? Clock::time_point::max() : deadline_after(Milliseconds(req.timeout_ms));
        waiters_.push_back({fd, req, deadline});
      }
      return;
  }
  reply(fd, StoreStatus::error, "unknown request");
}

bool TcpStoreServer::try_answer(int fd, const StoreRequest& req) {
  for (const auto& k : req.args) {
    if (!values_.count(k)) return false;
  }
  reply(fd, StoreStatus::ok, req.op == StoreOp::get && !req.args.empty() ? values_[req.args[0]] : "");
  return true;
}

// Sends at once when the socket takes it (the common case); poll() flushes the rest later.
void TcpStoreServer::reply(int fd, StoreStatus status, const std::string& payload) {
  Client& c = clients_[fd];
  c.out += encode_reply(status, payload);
  ssize_t n = send(fd, c.out.data(), c.out.size(), MSG_NOSIGNAL);
  if (n > 0) c.out.erase(0, static_cast<size_t>(n));
}

void TcpStoreServer::recheck_waiters() {
  waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(),
                                [&](const Waiter& w) { return try_answer(w.fd, w.request); }),
                 waiters_.end());
}

void TcpStoreServer::expire_waiters() {
  const auto now = Clock::now();
  waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(),
                                [&](const Waiter& w) {
                                  if (w.deadline > now) return false;
                                  std::vector<std::string> missing;
                                  for (const auto& k : w.request.args) {
                                    if (!values_.count(k)) missing.push_back(k);
                                  }
                                  reply(w.fd, StoreStatus::timeout, join_keys(missing));
                                  return true;
                                }),
                 waiters_.end());
}

void TcpStoreServer::drop(int fd) {
  close(fd);
  clients_.erase(fd);
  waiters_.erase(std::remove_if(waiters_.begin(), waiters_.end(), [&](const Waiter& w) { return w.fd == fd; }),
                 waiters_.end());
}

}  // namespace cohort::parallel::detail
