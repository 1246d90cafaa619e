// make_process_group: the world group from a ProcessGroupConfig. Today the caller fills the
// config; the env module will fill it from the rank contract, since nothing here reads the
// environment.
#include <memory>

#include "cohort/parallel/comm/mpi_backend.h"
#include "cohort/parallel/comm/nccl_backend.h"
#include "cohort/parallel/comm/process_group.h"

namespace cohort::parallel {
namespace {

void check_matches(const ProcessGroupConfig& c, const Communicator& comm) {
  COHORT_CHECK(c.rank < 0 || c.rank == comm.rank(), ValueError, "make_process_group('", c.name, "'): the config says rank ",
               c.rank, " but MPI says ", comm.rank(), "; the launcher and MPI disagree (start the job with one of them)");
  COHORT_CHECK(c.world_size < 0 || c.world_size == comm.size(), ValueError, "make_process_group('", c.name,
               "'): the config says world size ", c.world_size, " but MPI has ", comm.size(),
               " ranks: cohort-run alone starts no MPI job; run it under mpirun or srun");
}

}  // namespace

ProcessGroup make_process_group(const ProcessGroupConfig& c) {
  if (c.backend == "mpi") {
    auto host = make_mpi_world_communicator(c.name);
    check_matches(c, *host);
    return ProcessGroup(c.name, host);
  }
  if (c.backend == "nccl") {
    NcclOptions options;
    options.name = c.name;
    options.init_timeout = c.timeout;
    // With MPI running, it hands out the NCCL id and carries host tensors; without, a TCP store
    // at MASTER_ADDR:MASTER_PORT (served by rank 0) does the former and there is no host side
    // (a world of one needs neither).
    if (mpi_backend_built() && MpiSession::active()) {
      auto host = make_mpi_world_communicator(c.name);
      check_matches(c, *host);
      return ProcessGroup(c.name, host, make_nccl_communicator(*host, c.local_rank, options));
    }
    if (c.world_size == 1 && c.rank <= 0 && c.master_addr.empty()) {
      // One rank (one GPU): nobody to meet, so the unique id stays in this process.
      return ProcessGroup(c.name, nullptr, make_nccl_communicator(std::make_shared<HashStore>(), 0, 1, c.local_rank,
                                                                  options));
    }
    COHORT_CHECK(c.rank >= 0 && c.world_size > 0 && !c.master_addr.empty() && c.master_port > 0, ValueError,
                 "make_process_group('", c.name, "'): the nccl backend without MPI needs rank, world_size, ",
                 "master_addr and master_port (got rank ", c.rank, ", world_size ", c.world_size, ", master '",
                 c.master_addr, ":", c.master_port, "')");
    auto store = std::make_shared<TcpStore>(c.master_addr, c.master_port, c.rank == 0, c.timeout);
    return ProcessGroup(c.name, nullptr, make_nccl_communicator(store, c.rank, c.world_size, c.local_rank, options));
  }
  COHORT_THROW(ValueError, "make_process_group: unknown backend '", c.backend,
               "'; expected mpi or nccl (groups of threads come from LocalWorld)");
}

}  // namespace cohort::parallel
