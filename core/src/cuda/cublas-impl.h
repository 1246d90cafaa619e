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

#include <cublasLt.h>
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

// cuBLASLt, for products with a fused bias (the linear layer's forward): loaded after cuBLAS, by
// its soname or from the toolkit's or cuBLAS's directory (cuBLAS itself needs it).
struct CublasLtApi {
  cublasStatus_t (*create)(cublasLtHandle_t* handle);
  cublasStatus_t (*desc_create)(cublasLtMatmulDesc_t* desc, cublasComputeType_t compute, cudaDataType_t scale);
  cublasStatus_t (*desc_destroy)(cublasLtMatmulDesc_t desc);
  cublasStatus_t (*desc_set)(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const void* buf,
                             size_t bytes);
  cublasStatus_t (*layout_create)(cublasLtMatrixLayout_t* layout, cudaDataType type, uint64_t rows, uint64_t cols,
                                  int64_t ld);
  cublasStatus_t (*layout_destroy)(cublasLtMatrixLayout_t layout);
  cublasStatus_t (*pref_create)(cublasLtMatmulPreference_t* pref);
  cublasStatus_t (*pref_destroy)(cublasLtMatmulPreference_t pref);
  cublasStatus_t (*pref_set)(cublasLtMatmulPreference_t pref, cublasLtMatmulPreferenceAttributes_t attr,
                             const void* buf, size_t bytes);
  cublasStatus_t (*heuristic)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                              cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t results[],
                              int* count);
  cublasStatus_t (*matmul)(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* a,
                           cublasLtMatrixLayout_t a_layout, const void* b, cublasLtMatrixLayout_t b_layout,
                           const void* beta, const void* c, cublasLtMatrixLayout_t c_layout, void* d,
                           cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t* algo, void* workspace,
                           size_t workspace_bytes, cudaStream_t stream);
};

// The loaded cuBLASLt, or nullptr when it cannot be loaded or COHORT_CUBLASLT=0 (the products then
// add their bias the plain way: a copy, then the product accumulated onto it).
const CublasLtApi* cublaslt();

[[noreturn]] void cublas_fail(cublasStatus_t status, const char* what, const char* file, int line);

// The calling thread's cuBLAS handle for `device` (the current device), bound to `stream` with a
// workspace that belongs to that stream. Handles are created once per device and thread (and
// handed to the next thread when one exits); call this right before each cuBLAS call, as binding
// is only redone when the stream changes.
cublasHandle_t cublas_handle(int device, cudaStream_t stream);

}  // namespace cohort::detail
