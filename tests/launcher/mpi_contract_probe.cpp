// A rank program for the launcher tests: checks the contract cohort-run set against what MPI itself
// says, across nodes. cohort's communicator library does not exist yet, so this calls MPI directly.
//
//  * RANK/WORLD_SIZE equal MPI_Comm_rank/size;
//  * LOCAL_RANK/LOCAL_WORLD_SIZE equal the rank/size in MPI_COMM_TYPE_SHARED (same host);
//  * NODE_RANK is the same for ranks on one host, different across hosts, 0 on rank 0's host, and
//    below GROUP_WORLD_SIZE, which is the number of distinct hosts;
//  * MASTER_ADDR:MASTER_PORT is the same everywhere and is rank 0's host: rank 0 binds a TCP
//    listener to that address (which fails on any other host) and every other rank connects;
//  * an MPI_Allreduce (over TCP between hosts) of the ranks gives n(n-1)/2.
// Prints one "probe ok rank=..." line per rank and, on rank 0, "probe summary ..."; exits 1 with a
// message naming the mismatch otherwise.
#include <arpa/inet.h>
#include <mpi.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cohort/env/environment.h"

namespace {

[[noreturn]] void fail(int rank, const std::string& why) {
  std::fprintf(stderr, "probe FAILED on rank %d: %s\n", rank, why.c_str());
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, 1);
  std::exit(1);
}

int env_int(const cohort::env::Environment& env, const char* name, int rank) {
  auto v = env.get(name);
  if (!v) fail(rank, std::string(name) + " is not set");
  return std::stoi(*v);
}

sockaddr_in resolve(const std::string& host, int port, int rank) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res)
    fail(rank, "MASTER_ADDR " + host + " does not resolve");
  sockaddr_in addr = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  freeaddrinfo(res);
  return addr;
}

// Rank 0 listens on MASTER_ADDR:MASTER_PORT and must hear from every other rank within 30 s.
void rendezvous(int rank, int world, const std::string& host, int port) {
  sockaddr_in addr = resolve(host, port, rank);
  int listener = -1;
  if (rank == 0) {
    listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
      fail(rank, "cannot bind MASTER_ADDR:MASTER_PORT " + host + ":" + std::to_string(port) +
                     " (" + std::strerror(errno) + "): MASTER_ADDR is not this host?");
    listen(listener, world);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) {
    std::set<int> heard;
    while (static_cast<int>(heard.size()) < world - 1) {
      pollfd p{listener, POLLIN, 0};
      if (poll(&p, 1, 30000) <= 0) fail(rank, "timed out waiting for ranks at MASTER_ADDR");
      int c = accept(listener, nullptr, nullptr);
      int from = -1;
      if (c >= 0 && recv(c, &from, sizeof from, MSG_WAITALL) == sizeof from) heard.insert(from);
      if (c >= 0) close(c);
    }
    close(listener);
  } else {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      int s = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        send(s, &rank, sizeof rank, 0);
        close(s);
        break;
      }
      close(s);
      if (std::chrono::steady_clock::now() > deadline)
        fail(rank, "cannot connect to MASTER_ADDR:MASTER_PORT " + host + ":" + std::to_string(port));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, world = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  auto env = cohort::env::Environment::from_process();

  int c_rank = env_int(env, "RANK", rank), c_world = env_int(env, "WORLD_SIZE", rank);
  int c_local = env_int(env, "LOCAL_RANK", rank), c_lws = env_int(env, "LOCAL_WORLD_SIZE", rank);
  int c_node = env_int(env, "NODE_RANK", rank), c_nodes = env_int(env, "GROUP_WORLD_SIZE", rank);
  std::string master = env.get("MASTER_ADDR").value_or("");
  int port = env_int(env, "MASTER_PORT", rank);
  if (c_rank != rank || c_world != world)
    fail(rank, "RANK/WORLD_SIZE " + std::to_string(c_rank) + "/" + std::to_string(c_world) +
                   " but MPI says " + std::to_string(rank) + "/" + std::to_string(world));

  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local);
  int m_local = 0, m_lws = 0;
  MPI_Comm_rank(local, &m_local);
  MPI_Comm_size(local, &m_lws);
  if (c_local != m_local || c_lws != m_lws)
    fail(rank, "LOCAL_RANK/LOCAL_WORLD_SIZE " + std::to_string(c_local) + "/" +
                   std::to_string(c_lws) + " but this host's MPI ranks say " +
                   std::to_string(m_local) + "/" + std::to_string(m_lws));

  // Every rank's host and NODE_RANK, to check the node numbering as a whole.
  char host[64] = {};
  gethostname(host, sizeof host - 1);
  std::vector<char> hosts(64 * world);
  std::vector<int> nodes(world);
  MPI_Allgather(host, 64, MPI_CHAR, hosts.data(), 64, MPI_CHAR, MPI_COMM_WORLD);
  MPI_Allgather(&c_node, 1, MPI_INT, nodes.data(), 1, MPI_INT, MPI_COMM_WORLD);
  std::set<std::string> distinct;
  for (int r = 0; r < world; ++r) {
    std::string h(&hosts[64 * r]);
    distinct.insert(h);
    for (int q = 0; q < r; ++q)
      if ((h == std::string(&hosts[64 * q])) != (nodes[r] == nodes[q]))
        fail(rank, "NODE_RANK of ranks " + std::to_string(q) + " and " + std::to_string(r) +
                       " is " + std::to_string(nodes[q]) + " and " + std::to_string(nodes[r]) +
                       " but their hosts are " + &hosts[64 * q] + " and " + h);
  }
  if (nodes[0] != 0) fail(rank, "rank 0 is on NODE_RANK " + std::to_string(nodes[0]));
  if (c_nodes != static_cast<int>(distinct.size()) || c_node >= c_nodes)
    fail(rank, "GROUP_WORLD_SIZE " + std::to_string(c_nodes) + " but " +
                   std::to_string(distinct.size()) + " hosts");

  // The same MASTER_ADDR:MASTER_PORT everywhere, and reachable on rank 0's host.
  std::string mine = master + ":" + std::to_string(port);
  std::vector<char> all(128 * world);
  char buf[128] = {};
  std::snprintf(buf, sizeof buf, "%s", mine.c_str());
  MPI_Allgather(buf, 128, MPI_CHAR, all.data(), 128, MPI_CHAR, MPI_COMM_WORLD);
  for (int r = 0; r < world; ++r)
    if (mine != &all[128 * r]) fail(rank, "MASTER " + mine + " but rank " + std::to_string(r) +
                                              " has " + &all[128 * r]);
  rendezvous(rank, world, master, port);

  long long sum = 0, mine_ll = rank;
  MPI_Allreduce(&mine_ll, &sum, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  if (sum != static_cast<long long>(world) * (world - 1) / 2)
    fail(rank, "all_reduce gave " + std::to_string(sum));

  std::printf("probe ok rank=%d local=%d/%d node=%d/%d host=%s master=%s allreduce=%lld\n", rank,
              c_local, c_lws, c_node, c_nodes, host, mine.c_str(), sum);
  std::fflush(stdout);
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    std::printf("probe summary: %d ranks on %zu hosts, all_reduce=%lld, rendezvous at %s ok\n",
                world, distinct.size(), sum, mine.c_str());
  MPI_Comm_free(&local);
  MPI_Finalize();
  return 0;
}
