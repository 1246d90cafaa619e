// The stores: HashStore (threads) and TcpStore (a server thread plus clients over loopback).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include "cohort/parallel/comm/store.h"

namespace cohort::parallel {
namespace {

using namespace std::chrono_literals;

// The same behaviour from both kinds: set/get, get waiting for a later set, add, wait, check,
// and a timeout naming the missing key.
void exercise(Store& a, Store& b, const std::string& p = "") {
  a.set(p + "k", std::string("v\0w", 3));  // values are bytes
  EXPECT_EQ(b.get(p + "k", 1s), std::string("v\0w", 3));
  std::thread later([&] {
    std::this_thread::sleep_for(50ms);
    a.set(p + "late", "here");
  });
  EXPECT_EQ(b.get(p + "late", 5s), "here");
  later.join();
  EXPECT_EQ(a.add(p + "n", 2), 2);
  EXPECT_EQ(b.add(p + "n", 3), 5);
  EXPECT_EQ(a.get(p + "n", 1s), "5");
  EXPECT_TRUE(b.check({p + "k", p + "n"}));
  EXPECT_FALSE(b.check({p + "k", p + "absent"}));
  b.wait({p + "k", p + "n"}, 1s);
  try {
    b.wait({p + "k", p + "absent"}, 100ms);
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("absent'"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find(p + "k'"), std::string::npos) << e.what();
  }
  a.set(p + "k", "again");  // overwrite
  EXPECT_EQ(b.get(p + "k", 1s), "again");
}

TEST(HashStore, Basics) {
  HashStore s;
  exercise(s, s);
  s.set("text", "x");
  EXPECT_THROW(s.add("text", 1), ValueError);
}

TEST(TcpStore, ServerAndClient) {
  TcpStore server("127.0.0.1", 0, /*is_server=*/true);
  ASSERT_GT(server.port(), 0);
  TcpStore client("127.0.0.1", server.port(), false);
  exercise(server, client);
  exercise(client, server, "second/");
  EXPECT_THROW(client.add("k", 1), CommError);  // "again" is not an integer
}

// Many ranks meet: each adds itself, then waits for everyone's key (a rendezvous).
TEST(TcpStore, Rendezvous) {
  TcpStore server("127.0.0.1", 0, true);
  const int n = 8;
  std::vector<std::thread> ranks;
  std::vector<std::string> seen(n);
  for (int r = 0; r < n; ++r) {
    ranks.emplace_back([&, r] {
      TcpStore me("localhost", server.port(), false);
      me.set("rank/" + std::to_string(r), std::to_string(r * r));
      me.add("arrived", 1);
      std::vector<std::string> keys;
      for (int k = 0; k < n; ++k) keys.push_back("rank/" + std::to_string(k));
      me.wait(keys, 10s);
      seen[r] = me.get("rank/" + std::to_string((r + 1) % n), 1s);
    });
  }
  for (auto& t : ranks) t.join();
  for (int r = 0; r < n; ++r) EXPECT_EQ(seen[r], std::to_string(((r + 1) % n) * ((r + 1) % n)));
  EXPECT_EQ(server.get("arrived", 1s), std::to_string(n));
}

// A client started before the server keeps retrying until it is up.
TEST(TcpStore, ClientWaitsForTheServer) {
  int port = 0;
  {
    TcpStore probe("127.0.0.1", 0, true);  // learn a free port, then release it
    port = probe.port();
  }
  std::unique_ptr<TcpStore> server;
  std::thread starter([&] {
    std::this_thread::sleep_for(100ms);
    server = std::make_unique<TcpStore>("127.0.0.1", port, true);
    server->set("up", "1");
  });
  TcpStore client("127.0.0.1", port, false, 10s);
  EXPECT_EQ(client.get("up", 5s), "1");
  starter.join();
}

TEST(TcpStore, ConnectTimeoutSaysWhatToCheck) {
  int port = 0;
  {
    TcpStore probe("127.0.0.1", 0, true);
    port = probe.port();
  }
  try {
    TcpStore client("127.0.0.1", port, false, 200ms);
    FAIL() << "expected TimeoutError";
  } catch (const TimeoutError& e) {
    EXPECT_NE(std::string(e.what()).find("MASTER_ADDR/MASTER_PORT"), std::string::npos) << e.what();
  }
}

TEST(TcpStore, ServerGoneIsACommError) {
  auto server = std::make_unique<TcpStore>("127.0.0.1", 0, true);
  TcpStore client("127.0.0.1", server->port(), false);
  client.set("a", "1");
  server.reset();
  EXPECT_THROW(client.get("a", 1s), CommError);
}

}  // namespace
}  // namespace cohort::parallel
