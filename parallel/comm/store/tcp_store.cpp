// TcpStore's client side: one blocking connection, one request at a time. Timeouts of get/wait
// are enforced by the server (it answers "timeout"); the client only adds a grace period on top,
// so a server that vanished is reported as such instead of hanging.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "../deadline-impl.h"
#include "cohort/parallel/comm/store.h"
#include "tcp_store_server-impl.h"
#include "wire-impl.h"

namespace cohort::parallel {
namespace {

using detail::Clock;

// Connects, retrying while the server is not up yet (ranks start in any order).
int connect_with_retry(const std::string& host, int port, Milliseconds timeout) {
  const auto deadline = detail::deadline_after(timeout);
  std::string last_error = "no attempt";
  for (int attempt = 0;; ++attempt) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    const std::string service = std::to_string(port);
    int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
    if (rc != 0) {
      last_error = std::string("cannot resolve the host: ") + gai_strerror(rc);
    } else {
      for (addrinfo* a = res; a; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
          freeaddrinfo(res);
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          return fd;
        }
        last_error = std::strerror(errno);
        close(fd);
      }
      freeaddrinfo(res);
    }
    if (Clock::now() >= deadline) break;
    std::this_thread::sleep_for(Milliseconds(std::min(10 * (attempt + 1), 200)));
  }
  COHORT_THROW(TimeoutError, "TCP store: cannot connect to ", host, ":", port, " within ", timeout.count(),
               " ms (", last_error, "); is rank 0 running, and are MASTER_ADDR/MASTER_PORT the same on every rank?");
}

void send_all(int fd, const std::string& data, const std::string& where) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    COHORT_CHECK(n > 0, CommError, "TCP store at ", where, ": sending failed (", std::strerror(errno),
                 "); the server rank probably exited");
    done += static_cast<size_t>(n);
  }
}

void recv_exact(int fd, char* data, size_t size, Clock::time_point deadline, const std::string& where) {
  size_t done = 0;
  while (done < size) {
    auto left = std::chrono::duration_cast<Milliseconds>(deadline - Clock::now()).count();
    COHORT_CHECK(left > 0, TimeoutError, "TCP store at ", where, ": no answer from the server in time");
    pollfd p{fd, POLLIN, 0};
    int rc = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) continue;
    ssize_t n = recv(fd, data + done, size - done, 0);
    if (n < 0 && errno == EINTR) continue;
    COHORT_CHECK(n > 0, CommError, "TCP store at ", where, ": the server closed the connection (the rank that ",
                 "hosts it, usually rank 0, exited or crashed)");
    done += static_cast<size_t>(n);
  }
}

}  // namespace

TcpStore::TcpStore(const std::string& host, int port, bool is_server, Milliseconds connect_timeout)
    : host_(host), port_(port) {
  if (is_server) {
    server_ = std::make_unique<detail::TcpStoreServer>(port);
    port_ = server_->port();
  }
  COHORT_CHECK(port_ > 0 && port_ < 65536, ValueError, "TCP store: port ", port_,
               " is not a TCP port; a client needs the server's actual port (MASTER_PORT)");
  fd_ = connect_with_retry(is_server ? "127.0.0.1" : host_, port_, connect_timeout);
}

TcpStore::~TcpStore() {
  if (fd_ >= 0) close(fd_);
  server_.reset();
}

std::string TcpStore::request(uint8_t op, const std::vector<std::string>& args, Milliseconds timeout) {
  const std::string where = host_ + ":" + std::to_string(port_);
  const int64_t timeout_ms = timeout == Milliseconds::max() ? -1 : timeout.count();
  std::lock_guard<std::mutex> lock(mutex_);
  send_all(fd_, detail::encode_request(static_cast<detail::StoreOp>(op), args, timeout_ms), where);
  // The server answers by the timeout; the grace covers a slow network, not a lost server.
  const auto deadline = detail::deadline_after(timeout == Milliseconds::max() ? timeout : timeout + Milliseconds(30000));
  char head[5];
  recv_exact(fd_, head, sizeof head, deadline, where);
  uint32_t len;
  std::memcpy(&len, head + 1, sizeof len);
  std::string payload(len, '\0');
  if (len) recv_exact(fd_, payload.data(), len, deadline, where);
  switch (static_cast<detail::StoreStatus>(head[0])) {
    case detail::StoreStatus::ok: return payload;
    case detail::StoreStatus::timeout:
      COHORT_THROW(TimeoutError, "TCP store at ", where, ": ", payload, " not set within ", timeout.count(), " ms");
    case detail::StoreStatus::error: break;
  }
  COHORT_THROW(CommError, "TCP store at ", where, ": ", payload);
}

void TcpStore::set(const std::string& key, const std::string& value) {
  request(static_cast<uint8_t>(detail::StoreOp::set), {key, value}, Milliseconds(0));
}

std::string TcpStore::get(const std::string& key, Milliseconds timeout) {
  return request(static_cast<uint8_t>(detail::StoreOp::get), {key}, timeout);
}

int64_t TcpStore::add(const std::string& key, int64_t delta) {
  return std::stoll(request(static_cast<uint8_t>(detail::StoreOp::add), {key, std::to_string(delta)}, Milliseconds(0)));
}

void TcpStore::wait(const std::vector<std::string>& keys, Milliseconds timeout) {
  request(static_cast<uint8_t>(detail::StoreOp::wait), keys, timeout);
}

bool TcpStore::check(const std::vector<std::string>& keys) {
  return request(static_cast<uint8_t>(detail::StoreOp::check), keys, Milliseconds(0)) == "1";
}

}  // namespace cohort::parallel
