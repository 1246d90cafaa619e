// COHORT_NCCL_CHECK / COHORT_CUDA_CHECK: turn NCCL and CUDA error codes into typed exceptions
// (CommError for NCCL, DeviceError for CUDA) with the library's own message and file:line.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "cohort/parallel/comm/errors.h"

#define COHORT_NCCL_CHECK(call)                                                                                 \
  do {                                                                                                          \
    const ncclResult_t cohort_nccl_rc_ = (call);                                                                \
    if (cohort_nccl_rc_ != ncclSuccess && cohort_nccl_rc_ != ncclInProgress) {                                  \
      throw ::cohort::CommError(::cohort::detail::str_cat(#call, " failed: ", ncclGetErrorString(cohort_nccl_rc_), \
                                                          " (", ncclGetLastError(nullptr), ")"),                \
                                __FILE__, __LINE__);                                                            \
    }                                                                                                           \
  } while (0)

#define COHORT_CUDA_CHECK(call)                                                                                  \
  do {                                                                                                           \
    const cudaError_t cohort_cuda_rc_ = (call);                                                                  \
    if (cohort_cuda_rc_ != cudaSuccess) {                                                                        \
      throw ::cohort::DeviceError(::cohort::detail::str_cat(#call, " failed: ", cudaGetErrorName(cohort_cuda_rc_), \
                                                            " (", cudaGetErrorString(cohort_cuda_rc_), ")"),     \
                                  __FILE__, __LINE__);                                                           \
    }                                                                                                            \
  } while (0)
