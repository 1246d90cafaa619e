// cohort-bench: collective benchmarks in nccl-tests' format. A harness (harness.cpp) plus one small
// descriptor per collective (collectives.cpp): how many elements each buffer holds for a message
// size, the bus-bandwidth factor, how to run it on a cohort Communicator and, for --compare-mpi,
// as a plain MPI call.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/parallel/comm/communicator.h"
#include "mpi_reference.h"

namespace cohort::bench {

using parallel::Communicator;
using parallel::ReduceOp;
using parallel::WorkPtr;

struct BenchOptions {
  std::string collective;               // all_reduce, all_gather, reduce_scatter, broadcast
  size_t min_bytes = 32 << 20;          // -b
  size_t max_bytes = 32 << 20;          // -e
  size_t step_bytes = 1 << 20;          // -i (when the factor is 1)
  size_t step_factor = 1;               // -f
  int iters = 20;                       // -n
  int warmup = 5;                       // -w
  int check = 1;                        // -c: data-check iterations per size (0: none)
  DType dtype = DType::f32;             // -d
  ReduceOp op = ReduceOp::sum;          // -o
  int root = 0;                         // -r
  std::string backend = "mpi";          // --backend mpi|nccl
  std::string algorithm = "auto";       // --algorithm auto|shm|native (mpi backend)
  size_t chunk_bytes = 0;               // --chunk-bytes (mpi shared memory), 0: default
  long streaming_bytes = -1;            // --streaming-bytes (mpi shared memory), -1: default
  long async_bytes = -1;                // --async-bytes (mpi), -1: default
  bool compare_mpi = false;             // --compare-mpi: plain MPI, measured alternately
  int repeats = 1;                      // --repeats: timed blocks per size (median reported)
  std::string csv, json, plot;          // output files
};

// Element counts for a message, the nccl-tests way (see collectives.cpp).
struct Counts {
  size_t send = 0, recv = 0, param = 0;          // elements in the send and receive buffers; `count` argument
  size_t send_in_place = 0, recv_in_place = 0;   // offsets (x rank) of the in-place buffers in recvbuff
};

struct CollectiveDesc {
  const char* name;  // as on the command line
  bool reduces;      // prints the redop column
  bool rooted;       // prints the root column
  Counts (*counts)(size_t count, int nranks);
  // algbw = algbw_bytes / time; busbw = algbw * bus_factor (nccl-tests' PERFORMANCE.md).
  double (*algbw_bytes)(size_t param, size_t element_size, int nranks);
  double (*bus_factor)(int nranks);
  WorkPtr (*run)(Communicator& comm, const void* send, void* recv, size_t param, DType dtype, ReduceOp op, int root);
  // The plain MPI call; `send == nullptr` means in place (recv is then the receive buffer's start).
  void (*run_mpi)(const MpiReference& mpi, const void* send, void* recv, size_t param, DType dtype, ReduceOp op,
                  int root);
  // Fills this rank's input (the send buffer, or its in-place slot) for the data check.
  void (*fill)(void* send, size_t param, DType dtype, int rank, int nranks, int root, int salt);
  // Element i of this rank's expected output.
  double (*expected)(size_t i, size_t param, DType dtype, ReduceOp op, int rank, int nranks, int root, int salt);
};

const CollectiveDesc* find_collective(const std::string& name);
std::vector<std::string> collective_names();

// One measurement: time per iteration (us, averaged over ranks) and derived bandwidths.
struct Timing {
  double time_us = 0, algbw = 0, busbw = 0;
  int64_t wrong = -1;  // -1: not checked
};

struct Row {
  size_t bytes = 0, count = 0;
  Timing out_of_place, in_place;
  bool compared = false;
  Timing mpi_out_of_place, mpi_in_place;
};

struct Results {
  BenchOptions options;
  int nranks = 1;
  std::string backend_detail;  // "mpi (shared memory)"
  std::vector<Row> rows;
  int64_t errors = 0;  // sizes with wrong elements
  double avg_busbw = 0;
};

// Element access in host memory for the data check and the reference values.
double load_element(const void* buf, size_t i, DType dtype);
void store_element(void* buf, size_t i, DType dtype, double value);
double input_value(int rank, size_t i, DType dtype, int salt);
double reduce_expected(ReduceOp op, int nranks, size_t i, DType dtype, int salt);

// Names as nccl-tests prints them ("float", "bfloat16", ...).
const char* nccl_type_name(DType dtype);
bool parse_dtype(const std::string& text, DType& out);
bool parse_op(const std::string& text, ReduceOp& out);

}  // namespace cohort::bench
