#include "mpi_reference.h"

#include <mpi.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace cohort::bench {
namespace {

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw std::runtime_error(std::string(what) + " failed: " + std::string(text, len));
  }
}

MPI_Datatype type_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::boolean: return MPI_C_BOOL;
    case DType::bf16:
    case DType::f16: return MPI_UINT16_T;
  }
  return MPI_BYTE;
}

MPI_Op op_of(DType dtype, parallel::ReduceOp op) {
  if (dtype == DType::boolean) return op == parallel::ReduceOp::min ? MPI_LAND : MPI_LOR;
  switch (op) {
    case parallel::ReduceOp::max: return MPI_MAX;
    case parallel::ReduceOp::min: return MPI_MIN;
    default: return MPI_SUM;
  }
}

int as_int(size_t n) {
  if (n > static_cast<size_t>(INT_MAX)) throw std::runtime_error("--compare-mpi: count above MPI's int range");
  return static_cast<int>(n);
}

}  // namespace

// One for the timed baseline calls, one for bookkeeping, so neither shares matching state with the
// other (or with cohort's own duplicates).
struct MpiReference::Comms {
  MPI_Comm baseline = MPI_COMM_NULL;
  MPI_Comm books = MPI_COMM_NULL;
};

MpiReference::MpiReference() : comms_(new Comms) {
  check(MPI_Comm_dup(MPI_COMM_WORLD, &comms_->baseline), "MPI_Comm_dup");
  check(MPI_Comm_dup(MPI_COMM_WORLD, &comms_->books), "MPI_Comm_dup");
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiReference::~MpiReference() {
  MPI_Comm_free(&comms_->baseline);
  MPI_Comm_free(&comms_->books);
  delete comms_;
}

void MpiReference::barrier() const { check(MPI_Barrier(comms_->books), "MPI_Barrier"); }

double MpiReference::average(double value) const {
  double total = 0;
  check(MPI_Allreduce(&value, &total, 1, MPI_DOUBLE, MPI_SUM, comms_->books), "MPI_Allreduce");
  return total / size_;
}

int64_t MpiReference::sum(int64_t value) const {
  int64_t total = 0;
  check(MPI_Allreduce(&value, &total, 1, MPI_INT64_T, MPI_SUM, comms_->books), "MPI_Allreduce");
  return total;
}

std::vector<std::string> MpiReference::gather_to_root(const std::string& line) const {
  constexpr int kMax = 512;
  char mine[kMax] = {0};
  std::strncpy(mine, line.c_str(), kMax - 1);
  std::vector<char> all(rank_ == 0 ? static_cast<size_t>(kMax) * size_ : 0);
  check(MPI_Gather(mine, kMax, MPI_CHAR, all.data(), kMax, MPI_CHAR, 0, comms_->books), "MPI_Gather");
  std::vector<std::string> lines;
  for (int r = 0; rank_ == 0 && r < size_; ++r) lines.emplace_back(all.data() + static_cast<size_t>(r) * kMax);
  return lines;
}

std::string MpiReference::hostname() const {
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  return std::string(name, len);
}

void MpiReference::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::abort();
}

bool MpiReference::supports(DType dtype, parallel::ReduceOp op) {
  return dtype != DType::bf16 && dtype != DType::f16 && op != parallel::ReduceOp::avg;
}

void MpiReference::all_reduce(const void* send, void* recv, size_t count, DType dtype, parallel::ReduceOp op) const {
  check(MPI_Allreduce(send ? send : MPI_IN_PLACE, recv, as_int(count), type_of(dtype), op_of(dtype, op),
                      comms_->baseline),
        "MPI_Allreduce");
}

void MpiReference::all_gather(const void* send, void* recv, size_t count, DType dtype) const {
  check(MPI_Allgather(send ? send : MPI_IN_PLACE, as_int(count), type_of(dtype), recv, as_int(count), type_of(dtype),
                      comms_->baseline),
        "MPI_Allgather");
}

// In place, MPI leaves the result at the start of recv; nccl-tests' layout wants it at this
// rank's block, so the baseline copies it there (as a user of MPI would have to).
void MpiReference::reduce_scatter(const void* send, void* recv, size_t count, DType dtype, parallel::ReduceOp op) const {
  check(MPI_Reduce_scatter_block(send ? send : MPI_IN_PLACE, recv, as_int(count), type_of(dtype), op_of(dtype, op),
                                 comms_->baseline),
        "MPI_Reduce_scatter_block");
  if (!send && rank_ != 0) {
    const size_t bytes = count * element_size(dtype);
    std::memmove(static_cast<char*>(recv) + rank_ * bytes, recv, bytes);
  }
}

void MpiReference::broadcast(const void* send, void* recv, size_t count, DType dtype, int root) const {
  if (send && rank_ == root) std::memcpy(recv, send, count * element_size(dtype));
  check(MPI_Bcast(recv, as_int(count), type_of(dtype), root, comms_->baseline), "MPI_Bcast");
}

}  // namespace cohort::bench
