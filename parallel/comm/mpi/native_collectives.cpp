#include "native_collectives-impl.h"

#include <climits>
#include <cstring>

#include "../reduce-impl.h"
#include "mpi_check-impl.h"

namespace cohort::parallel::detail {
namespace {

// MPI user reductions for the 16-bit floats: combine in float, round once per pair. (MPI applies
// them pairwise, so a sum over many ranks rounds more often than the shared-memory path does.)
template <class T, ReduceOp Op>
void half_op(void* in, void* inout, int* len, MPI_Datatype*) {
  const T* a = static_cast<const T*>(in);
  T* b = static_cast<T*>(inout);
  for (int i = 0; i < *len; ++i) {
    const float x = a[i], y = b[i];
    b[i] = T(Op == ReduceOp::max ? (x < y ? y : x) : Op == ReduceOp::min ? (y < x ? y : x) : x + y);
  }
}

int as_int_count(int64_t count, const char* what) {
  COHORT_CHECK(count <= INT_MAX, ValueError, "mpi communicator: ", what, " of ", count,
               " elements is more than MPI's int count allows (2^31-1) on the native path; split the buffer");
  return static_cast<int>(count);
}

}  // namespace

NativeCollectives::NativeCollectives(MPI_Comm comm, int rank, int size) : comm_(comm), rank_(rank), size_(size) {
  MPI_User_function* fns[2][3] = {
      {half_op<BFloat16, ReduceOp::sum>, half_op<BFloat16, ReduceOp::max>, half_op<BFloat16, ReduceOp::min>},
      {half_op<Half, ReduceOp::sum>, half_op<Half, ReduceOp::max>, half_op<Half, ReduceOp::min>}};
  for (int t = 0; t < 2; ++t) {
    for (int o = 0; o < 3; ++o) COHORT_MPI_CHECK(MPI_Op_create(fns[t][o], /*commute=*/1, &half_ops_[t][o]));
  }
}

NativeCollectives::~NativeCollectives() {
  for (auto& row : half_ops_) {
    for (MPI_Op& op : row) MPI_Op_free(&op);
  }
}

MPI_Datatype mpi_datatype(DType dtype) {
  switch (dtype) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i32: return MPI_INT32_T;
    case DType::i64: return MPI_INT64_T;
    case DType::bf16:
    case DType::f16: return MPI_UINT16_T;
    case DType::boolean: return MPI_C_BOOL;
  }
  return MPI_BYTE;
}

MPI_Op NativeCollectives::op_for(DType dtype, ReduceOp op) const {
  if (dtype == DType::boolean) return op == ReduceOp::min ? MPI_LAND : MPI_LOR;
  const int o = op == ReduceOp::max ? 1 : op == ReduceOp::min ? 2 : 0;  // avg: a sum, divided after
  if (dtype == DType::bf16) return half_ops_[0][o];
  if (dtype == DType::f16) return half_ops_[1][o];
  return o == 1 ? MPI_MAX : o == 2 ? MPI_MIN : MPI_SUM;
}

// Polls until the request completes; when `poll.pause` throws (deadline, failure), the request is
// abandoned (MPI cannot cancel a collective) together with what keeps its buffers alive.
void NativeCollectives::complete(MPI_Request& request, NativePoll& poll) {
  int done = 0;
  for (uint64_t it = 0;; ++it) {
    COHORT_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return;
    try {
      poll.pause(it);
    } catch (...) {
      abandoned_.push_back({request, poll.keep_alive});
      throw;
    }
  }
}

bool NativeCollectives::reap_abandoned() {
  for (size_t i = 0; i < abandoned_.size();) {
    int done = 0;
    MPI_Test(&abandoned_[i].request, &done, MPI_STATUS_IGNORE);
    if (done) {
      abandoned_.erase(abandoned_.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  return abandoned_.empty();
}

void NativeCollectives::all_reduce(const void* input, void* output, int64_t count, DType dtype, ReduceOp op,
                                   NativePoll& poll) {
  const int n = as_int_count(count, "all_reduce");
  MPI_Request req;
  COHORT_MPI_CHECK(MPI_Iallreduce(input == output ? MPI_IN_PLACE : input, output, n, mpi_datatype(dtype),
                                  op_for(dtype, op), comm_, &req));
  complete(req, poll);
  if (op == ReduceOp::avg) divide_by(output, count, dtype, size_);
}

void NativeCollectives::broadcast(const void* input, void* output, int64_t count, DType dtype, int root,
                                  NativePoll& poll) {
  const int n = as_int_count(count, "broadcast");
  if (rank_ == root && input != output) std::memcpy(output, input, static_cast<size_t>(count) * element_size(dtype));
  MPI_Request req;
  COHORT_MPI_CHECK(MPI_Ibcast(output, n, mpi_datatype(dtype), root, comm_, &req));
  complete(req, poll);
}

void NativeCollectives::all_gather(const void* input, void* output, int64_t count, DType dtype, NativePoll& poll) {
  const int n = as_int_count(count * size_, "all_gather");
  const size_t block = static_cast<size_t>(count) * element_size(dtype);
  const bool in_place = input == static_cast<const char*>(output) + rank_ * block;
  MPI_Request req;
  COHORT_MPI_CHECK(MPI_Iallgather(in_place ? MPI_IN_PLACE : input, n / size_, mpi_datatype(dtype), output, n / size_,
                                  mpi_datatype(dtype), comm_, &req));
  complete(req, poll);
}

// MPI's in-place reduce-scatter leaves the result at the start of the buffer; NCCL's layout (and
// cohort's) puts it at the rank's own block, so in-place goes through a temporary.
void NativeCollectives::reduce_scatter(const void* input, void* output, int64_t count, DType dtype, ReduceOp op,
                                       NativePoll& poll) {
  const int n = as_int_count(count * size_, "reduce_scatter") / size_;
  const size_t block = static_cast<size_t>(count) * element_size(dtype);
  const bool in_place = output == static_cast<const char*>(input) + rank_ * block;
  void* dst = output;
  if (in_place) {
    auto temp = std::make_shared<std::vector<char>>(block);
    poll.keep_alive.push_back(temp);  // MPI may still write it if the request is abandoned
    dst = temp->data();
  }
  MPI_Request req;
  COHORT_MPI_CHECK(MPI_Ireduce_scatter_block(input, dst, n, mpi_datatype(dtype), op_for(dtype, op), comm_, &req));
  complete(req, poll);
  if (in_place) std::memcpy(output, dst, block);
  if (op == ReduceOp::avg) divide_by(output, count, dtype, size_);
}

void NativeCollectives::barrier(NativePoll& poll) {
  MPI_Request req;
  COHORT_MPI_CHECK(MPI_Ibarrier(comm_, &req));
  complete(req, poll);
}

}  // namespace cohort::parallel::detail
