#include "shm_segment-impl.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "../deadline-impl.h"
#include "mpi_check-impl.h"

namespace cohort::parallel::detail {
namespace {

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

}  // namespace

ShmSegment::ShmSegment(MPI_Comm node_comm, int rank, int size, size_t chunk_bytes)
    : size_(size), chunk_bytes_(round_up(chunk_bytes, 4096)) {
  const size_t header = round_up(sizeof(RankCounters) * size, 4096);
  bytes_ = header + chunk_bytes_ * 2 * (size + 1);

  // The first rank creates the segment under a name nobody else can have picked (pid, address,
  // time) and passes the name on; "" means it failed.
  char name[64] = {0};
  std::string error;
  int fd = -1;
  if (rank == 0) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    std::snprintf(name, sizeof name, "/cohort-%d-%lx-%llx", static_cast<int>(getpid()),
                  static_cast<unsigned long>(reinterpret_cast<uintptr_t>(this)), static_cast<long long>(now));
    fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes_)) != 0) {
      error = str_cat("shm_open/ftruncate of ", bytes_, " bytes failed: ", std::strerror(errno));
      if (fd >= 0) shm_unlink(name);
      name[0] = '\0';
    }
  }
  COHORT_MPI_CHECK(MPI_Bcast(name, sizeof name, MPI_CHAR, 0, node_comm));
  if (rank != 0 && name[0] != '\0') {
    fd = shm_open(name, O_RDWR, 0600);
    if (fd < 0) error = str_cat("shm_open of ", name, " failed: ", std::strerror(errno));
  }
  if (fd >= 0) {
    base_ = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (base_ == MAP_FAILED) {
      base_ = nullptr;
      error = str_cat("mmap of ", bytes_, " bytes failed: ", std::strerror(errno));
    }
  } else if (error.empty()) {
    error = "the first rank could not create the segment";
  }
  // Everyone agrees on success before the name goes away.
  int ok = base_ != nullptr, all_ok = 0;
  COHORT_MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, node_comm));
  if (rank == 0 && name[0] != '\0') shm_unlink(name);
  if (!all_ok) {
    if (base_) munmap(base_, bytes_);
    base_ = nullptr;
    COHORT_THROW(CommError, "mpi communicator: cannot set up the shared-memory segment (", bytes_, " bytes in /dev/shm)",
                 error.empty() ? std::string(" on another rank") : ": " + error,
                 "; free space in /dev/shm or use MpiOptions::Algorithm::native");
  }
  counters_ = static_cast<RankCounters*>(base_);  // zero-filled by ftruncate: every counter starts at 0
  stage_ = static_cast<char*>(base_) + header;
  result_ = stage_ + chunk_bytes_ * 2 * size;
}

ShmSegment::~ShmSegment() {
  if (base_) munmap(base_, bytes_);
}

}  // namespace cohort::parallel::detail
