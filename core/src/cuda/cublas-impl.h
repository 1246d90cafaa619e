// cuBLAS, opened with dlopen on first use (implementation-only header; CUDA builds only).
//
// cohort_core does not link libcublas: the library is large and its load-time relocations cost every
// program ~0.1 s at start, also programs that never multiply on a GPU (measured). cublas() opens it
// once, by its soname (COHORT_CUBLAS_SONAME, e.g. libcublas.so.13, searched on the loader's path)
// or else from the toolkit's library directory recorded at configure time, and looks up the few
// functions cohort calls. Only the types and constants come from the headers.
//
//   const CublasApi& api = cublas();   // throws DeviceError if the library cannot be loaded
//   COHORT_CUBLAS_CHECK(api.gemm_ex(handle, ...));
#pragma once

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include <cstddef>

// COHORT_CUBLAS_CHECK(api.gemm_ex(...)): throws DeviceError with the cuBLAS status's name and text,
// the call that failed and this file:line.
#define COHORT_CUBLAS_CHECK(expr)                                                  \
  do {                                                                             \
    const cublasStatus_t cohort_cublas_status_ = (expr);                           \
    if (cohort_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                          \
      ::cohort::detail::cublas_fail(cohort_cublas_status_, #expr, __FILE__, __LINE__); \
    }                                                                              \
  } while (0)

namespace cohort::detail {

// The cuBLAS functions cohort uses, as loaded from the library (the same signatures as in
// cublas_api.h; the *_v2 entry points are what cublas_v2.h's names map to).
struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t* handle);
  cublasStatus_t (*set_stream)(cublasHandle_t handle, cudaStream_t stream);
  cublasStatus_t (*set_workspace)(cublasHandle_t handle, void* workspace, size_t bytes);
  cublasStatus_t (*set_math_mode)(cublasHandle_t handle, cublasMath_t mode);
  cublasStatus_t (*gemm_ex)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* a, cudaDataType a_type, int lda, const void* b,
                            cudaDataType b_type, int ldb, const void* beta, void* c, cudaDataType c_type, int ldc,
                            cublasComputeType_t compute_type, cublasGemmAlgo_t algo);
  cublasStatus_t (*gemm_strided_batched_ex)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                            int m, int n, int k, const void* alpha, const void* a, cudaDataType a_type,
                                            int lda, long long stride_a, const void* b, cudaDataType b_type, int ldb,
                                            long long stride_b, const void* beta, void* c, cudaDataType c_type,
                                            int ldc, long long stride_c, int batch_count,
                                            cublasComputeType_t compute_type, cublasGemmAlgo_t algo);
  const char* (*status_name)(cublasStatus_t status);
  const char* (*status_string)(cublasStatus_t status);
};

// The loaded library (opened on the first call, thread-safe). Throws DeviceError, saying where it
// looked and how to install it, when the library or one of the functions cannot be found.
const CublasApi& cublas();

[[noreturn]] void cublas_fail(cublasStatus_t status, const char* what, const char* file, int line);

// The calling thread's cuBLAS handle for `device` (the current device), bound to `stream` with a
// workspace that belongs to that stream. Handles are created once per device and thread (and
// handed to the next thread when one exits); call this right before each cuBLAS call, as binding
// is only redone when the stream changes.
cublasHandle_t cublas_handle(int device, cudaStream_t stream);

}  // namespace cohort::detail
