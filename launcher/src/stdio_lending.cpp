#include "stdio_lending.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cohort::run {
namespace {

bool make_address(const std::string& path, sockaddr_un& addr) {
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) return false;  // a long TMPDIR: fall back to mpirun
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

void send_stdio(int conn) {
  int fds[2] = {STDOUT_FILENO, STDERR_FILENO};
  char byte = 'x';
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(c), fds, sizeof fds);
  while (sendmsg(conn, &msg, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

}  // namespace

StdioLender::StdioLender(const std::string& socket_path) {
  sockaddr_un addr;
  if (!make_address(socket_path, addr)) return;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 64) != 0) {
    close(fd);
    return;
  }
  listen_fd_ = fd;
  // One blocking accept loop; the destructor's shutdown() makes accept() fail and the loop end.
  server_ = std::thread([fd] {
    for (;;) {
      int conn = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (conn < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;
      }
      send_stdio(conn);
      close(conn);
    }
  });
}

StdioLender::~StdioLender() {
  if (listen_fd_ < 0) return;
  shutdown(listen_fd_, SHUT_RDWR);
  server_.join();
  close(listen_fd_);
}

bool borrow_stdio(const std::string& socket_path) {
  sockaddr_un addr;
  if (!make_address(socket_path, addr)) return false;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return false;
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(s);
    return false;
  }
  int fds[2] = {-1, -1};
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = recvmsg(s, &msg, MSG_CMSG_CLOEXEC); while (n < 0 && errno == EINTR);
  close(s);
  cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&msg) : nullptr;
  if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof fds)) return false;
  std::memcpy(fds, CMSG_DATA(c), sizeof fds);
  bool ok = dup2(fds[0], STDOUT_FILENO) >= 0 && dup2(fds[1], STDERR_FILENO) >= 0;
  close(fds[0]);
  close(fds[1]);
  return ok;
}

}  // namespace cohort::run
