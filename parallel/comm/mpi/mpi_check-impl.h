// COHORT_MPI_CHECK(MPI_Comm_dup(...)): turns an MPI error code into a CommError carrying MPI's own
// message and this file:line. Communicators are set to MPI_ERRORS_RETURN so errors reach it.
#pragma once

#include <mpi.h>

#include <string>

#include "cohort/parallel/comm/errors.h"

namespace cohort::parallel::detail {

inline std::string mpi_error_string(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(code, text, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
  return std::string(text, static_cast<size_t>(len));
}

}  // namespace cohort::parallel::detail

#define COHORT_MPI_CHECK(call)                                                                                    \
  do {                                                                                                            \
    const int cohort_mpi_rc_ = (call);                                                                            \
    if (cohort_mpi_rc_ != MPI_SUCCESS) {                                                                          \
      throw ::cohort::CommError(                                                                                  \
          ::cohort::detail::str_cat(#call, " failed: ", ::cohort::parallel::detail::mpi_error_string(cohort_mpi_rc_)), \
          __FILE__, __LINE__);                                                                                    \
    }                                                                                                             \
  } while (0)
