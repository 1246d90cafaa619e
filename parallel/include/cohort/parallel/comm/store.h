// Store: a small key-value service the ranks of a job meet at (rendezvous, the NCCL unique id,
// status reports). Keys are strings, values bytes; get() and wait() block until the key exists.
//
//   // rank 0                                        // every other rank
//   TcpStore store(addr, port, /*is_server=*/true);   TcpStore store(addr, port, false);
//   store.set("nccl_id", id);                         std::string id = store.get("nccl_id", 60s);
//   store.add("arrived", 1);                          store.add("arrived", 1);
//
// The address and port come from the caller (the rank contract's MASTER_ADDR/MASTER_PORT); the
// store never reads the environment.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cohort/parallel/comm/errors.h"
#include "cohort/parallel/comm/types.h"

namespace cohort::parallel {

class Store {
 public:
  virtual ~Store() = default;
  virtual void set(const std::string& key, const std::string& value) = 0;
  // The value of `key`, waiting up to `timeout` for some rank to set it (TimeoutError after).
  virtual std::string get(const std::string& key, Milliseconds timeout) = 0;
  // Adds `delta` to the integer stored at `key` (0 when absent) and returns the new value. The
  // value reads back through get() as decimal text.
  virtual int64_t add(const std::string& key, int64_t delta) = 0;
  // Waits until every key exists (TimeoutError naming the missing ones after `timeout`).
  virtual void wait(const std::vector<std::string>& keys, Milliseconds timeout) = 0;
  // Whether every key exists now, without waiting.
  virtual bool check(const std::vector<std::string>& keys) = 0;
};

// In one process (ranks as threads): a map under a mutex.
class HashStore : public Store {
 public:
  void set(const std::string& key, const std::string& value) override;
  std::string get(const std::string& key, Milliseconds timeout) override;
  int64_t add(const std::string& key, int64_t delta) override;
  void wait(const std::vector<std::string>& keys, Milliseconds timeout) override;
  bool check(const std::vector<std::string>& keys) override;

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::string> values_;
};

namespace detail {
class TcpStoreServer;
}

// Over TCP: the server (one thread, in the process that passes is_server) holds the map; every
// rank, the server's too, is a client. Port 0 on the server picks a free port (see port()).
class TcpStore : public Store {
 public:
  TcpStore(const std::string& host, int port, bool is_server, Milliseconds connect_timeout = Milliseconds(60000));
  ~TcpStore() override;

  int port() const { return port_; }

  void set(const std::string& key, const std::string& value) override;
  std::string get(const std::string& key, Milliseconds timeout) override;
  int64_t add(const std::string& key, int64_t delta) override;
  void wait(const std::vector<std::string>& keys, Milliseconds timeout) override;
  bool check(const std::vector<std::string>& keys) override;

 private:
  std::string request(uint8_t op, const std::vector<std::string>& args, Milliseconds timeout);

  std::string host_;
  int port_;
  std::unique_ptr<detail::TcpStoreServer> server_;
  int fd_ = -1;
  std::mutex mutex_;  // one request at a time on the connection
};

}  // namespace cohort::parallel
