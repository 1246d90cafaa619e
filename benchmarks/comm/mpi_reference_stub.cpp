// A cohort-bench built without MPI has no MPI baselines and no MPI bookkeeping: its ranks meet
// through a Store (control.h), and --compare-mpi / --backend mpi are refused before this is reached.
#include <stdexcept>

#include "mpi_reference.h"

namespace cohort::bench {
namespace {
[[noreturn]] void no_mpi() { throw std::runtime_error("cohort-bench was built without MPI"); }
}  // namespace

MpiReference::MpiReference() : comms_(nullptr) { no_mpi(); }
MpiReference::~MpiReference() = default;
void MpiReference::barrier() const { no_mpi(); }
double MpiReference::average(double) const { no_mpi(); }
int64_t MpiReference::sum(int64_t) const { no_mpi(); }
std::vector<std::string> MpiReference::gather_to_root(const std::string&) const { no_mpi(); }
std::string MpiReference::hostname() const { no_mpi(); }
void MpiReference::abort(int) const { no_mpi(); }
bool MpiReference::supports(DType, parallel::ReduceOp) { return false; }
void MpiReference::all_reduce(const void*, void*, size_t, DType, parallel::ReduceOp) const { no_mpi(); }
void MpiReference::all_gather(const void*, void*, size_t, DType) const { no_mpi(); }
void MpiReference::reduce_scatter(const void*, void*, size_t, DType, parallel::ReduceOp) const { no_mpi(); }
void MpiReference::broadcast(const void*, void*, size_t, DType, int) const { no_mpi(); }

}  // namespace cohort::bench
