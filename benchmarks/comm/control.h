// The benchmark's own bookkeeping among its ranks: barriers before timed blocks, the time averaged
// over ranks, wrong elements summed, the "Using devices" lines gathered to rank 0. Over MPI when
// MPI started the job (MpiReference); otherwise over a Store: a TcpStore at MASTER_ADDR:MASTER_PORT
// for ranks started with the rank contract (cohort-run, torchrun-style variables), or a store in
// this process for a world of one, which is what a GPU machine without MPI runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/parallel/comm/store.h"

namespace cohort::bench {

class Control {
 public:
  virtual ~Control() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual void barrier() const = 0;
  virtual double average(double value) const = 0;
  virtual int64_t sum(int64_t value) const = 0;
  virtual std::vector<std::string> gather_to_root(const std::string& line) const = 0;  // rank order, on rank 0
  virtual std::string hostname() const = 0;
};

// Bookkeeping through `store` among `size` ranks (every rank passes the same store and size).
std::unique_ptr<Control> make_store_control(std::shared_ptr<parallel::Store> store, int rank, int size);

}  // namespace cohort::bench
