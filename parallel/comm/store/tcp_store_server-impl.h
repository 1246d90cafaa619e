// The TCP store's server: one thread, one poll() loop over the listening socket and the clients.
// A get/wait whose keys are missing parks the client as a waiter; every set/add re-checks the
// waiters, and the poll timeout is the nearest waiter's deadline, when it is answered "timeout".
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "wire-impl.h"

namespace cohort::parallel::detail {

class TcpStoreServer {
 public:
  explicit TcpStoreServer(int port);  // listens on every interface; port 0 picks a free one
  ~TcpStoreServer();
  int port() const { return port_; }

 private:
  struct Client {
    std::string in, out;
  };
  struct Waiter {
    int fd;
    StoreRequest request;
    std::chrono::steady_clock::time_point deadline;
  };

  void loop();
  void handle(int fd, const StoreRequest& req);
  bool try_answer(int fd, const StoreRequest& req);  // false when its keys are missing
  void reply(int fd, StoreStatus status, const std::string& payload);
  void recheck_waiters();
  void expire_waiters();
  void drop(int fd);

  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  int port_ = 0;
  std::map<int, Client> clients_;
  std::vector<Waiter> waiters_;
  std::map<std::string, std::string> values_;
  std::thread thread_;
};

}  // namespace cohort::parallel::detail
