// Factories of the backends this build does not have: they throw a message saying how to get the
// backend, so programs compile the same way whatever was found at configure time.
#include "cohort/config.h"
#include "cohort/parallel/comm/mpi_backend.h"
#include "cohort/parallel/comm/nccl_backend.h"

namespace cohort::parallel {

#if !COHORT_WITH_MPI
namespace {
[[noreturn]] void no_mpi() {
  COHORT_THROW(CommError, "cohort was built without MPI (COHORT_WITH_MPI=0): install libopenmpi-dev openmpi-bin "
                          "and reconfigure, or use the local backend");
}
}  // namespace
MpiSession::MpiSession(int*, char***) { no_mpi(); }
MpiSession::~MpiSession() = default;
std::string MpiSession::processor_name() const { return ""; }
void MpiSession::world_barrier() const {}
bool MpiSession::active() { return false; }
std::shared_ptr<Communicator> make_mpi_world_communicator(const std::string&, const MpiOptions&) { no_mpi(); }
ProcessGroup make_mpi_world_group(const std::string&, const MpiOptions&) { no_mpi(); }
bool mpi_backend_built() { return false; }
#endif

#if !COHORT_WITH_NCCL
namespace {
[[noreturn]] void no_nccl() {
  COHORT_THROW(DeviceError, "cohort was built without NCCL (COHORT_WITH_NCCL=0): it needs the CUDA toolkit with "
                            "NCCL at configure time; use the mpi backend for host memory");
}
}  // namespace
std::shared_ptr<Communicator> make_nccl_communicator(Communicator&, int, const NcclOptions&) { no_nccl(); }
std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Store>, int, int, int, const NcclOptions&) {
  no_nccl();
}
bool nccl_backend_built() { return false; }
#endif

#if !COHORT_WITH_CUDA
int cuda_device_count() { return 0; }
std::string cuda_unavailable_reason() { return "cohort was built without CUDA (COHORT_WITH_CUDA=0)"; }
#endif

}  // namespace cohort::parallel
