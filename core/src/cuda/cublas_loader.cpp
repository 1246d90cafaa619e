// Opens cuBLAS with dlopen on first use and looks up the functions cohort calls (see cublas-impl.h
// for why it is not linked). CMake sets COHORT_CUBLAS_SONAME (libcublas.so.<toolkit major>) and
// COHORT_CUDA_LIBRARY_DIR (the toolkit's library directory) on this file.
#include <dlfcn.h>

#include <string>
#include <type_traits>

#include "cohort/core/error.h"
#include "cublas-impl.h"

#ifndef COHORT_CUBLAS_SONAME
#define COHORT_CUBLAS_SONAME "libcublas.so"
#endif
#ifndef COHORT_CUDA_LIBRARY_DIR
#define COHORT_CUDA_LIBRARY_DIR "/usr/local/cuda/lib64"
#endif

namespace cohort::detail {

// Each pointer type of CublasApi must match the header's declaration: the static_cast picks the
// overload of exactly that type or fails to compile. Unevaluated, so no symbol is referenced.
#define COHORT_CUBLAS_SIGNATURE(member, function)                                                \
  static_assert(std::is_same_v<decltype(static_cast<decltype(CublasApi::member)>(&function)), \
                               decltype(CublasApi::member)>,                                      \
                #function " has another signature than CublasApi::" #member)
COHORT_CUBLAS_SIGNATURE(create, cublasCreate_v2);
COHORT_CUBLAS_SIGNATURE(set_stream, cublasSetStream_v2);
COHORT_CUBLAS_SIGNATURE(set_workspace, cublasSetWorkspace_v2);
COHORT_CUBLAS_SIGNATURE(set_math_mode, cublasSetMathMode);
COHORT_CUBLAS_SIGNATURE(gemm_ex, cublasGemmEx);
COHORT_CUBLAS_SIGNATURE(gemm_strided_batched_ex, cublasGemmStridedBatchedEx);
COHORT_CUBLAS_SIGNATURE(status_name, cublasGetStatusName);
COHORT_CUBLAS_SIGNATURE(status_string, cublasGetStatusString);
#undef COHORT_CUBLAS_SIGNATURE

namespace {

// The soname first (LD_LIBRARY_PATH, the ld.so cache, a pip wheel's directory on the path), then
// the toolkit this cohort was built against.
void* open_library(std::string& tried) {
  const std::string candidates[] = {COHORT_CUBLAS_SONAME, std::string(COHORT_CUDA_LIBRARY_DIR) + "/" + COHORT_CUBLAS_SONAME};
  for (const std::string& path : candidates) {
    if (void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) return lib;
    const char* err = dlerror();
    tried += str_cat("\n  ", path, ": ", err != nullptr ? err : "not found");
  }
  return nullptr;
}

template <class Fn>
void look_up(void* lib, const char* name, Fn& fn) {
  dlerror();
  fn = reinterpret_cast<Fn>(dlsym(lib, name));
  COHORT_CHECK(fn != nullptr, DeviceError, "cuBLAS: the loaded ", COHORT_CUBLAS_SONAME, " has no function ", name,
               " (is it an older cuBLAS than the headers cohort was built with?); install the cuBLAS of CUDA ",
               "toolkit ", CUBLAS_VER_MAJOR, ".x, or point LD_LIBRARY_PATH at its directory");
}

CublasApi load() {
  std::string tried;
  void* lib = open_library(tried);
  COHORT_CHECK(lib != nullptr, DeviceError, "cuBLAS is needed for matrix products on CUDA devices, but ",
               COHORT_CUBLAS_SONAME, " could not be loaded; tried:", tried,
               "\nInstall the CUDA toolkit's cuBLAS (e.g. apt install libcublas-", CUBLAS_VER_MAJOR,
               "-<minor>, or pip install nvidia-cublas) and put its directory on LD_LIBRARY_PATH");
  CublasApi api{};
  look_up(lib, "cublasCreate_v2", api.create);
  look_up(lib, "cublasSetStream_v2", api.set_stream);
  look_up(lib, "cublasSetWorkspace_v2", api.set_workspace);
  look_up(lib, "cublasSetMathMode", api.set_math_mode);
  look_up(lib, "cublasGemmEx", api.gemm_ex);
  look_up(lib, "cublasGemmStridedBatchedEx", api.gemm_strided_batched_ex);
  look_up(lib, "cublasGetStatusName", api.status_name);
  look_up(lib, "cublasGetStatusString", api.status_string);
  return api;
}

}  // namespace

const CublasApi& cublas() {
  static const CublasApi api = load();  // a failed load throws and is retried by the next call
  return api;
}

void cublas_fail(cublasStatus_t status, const char* what, const char* file, int line) {
  const CublasApi& api = cublas();
  std::string hint;
  if (status == CUBLAS_STATUS_NOT_INITIALIZED) {
    hint = "; cuBLAS could not initialise: is the GPU usable (nvidia-smi) and is there free device memory?";
  } else if (status == CUBLAS_STATUS_ALLOC_FAILED) {
    hint = "; the device is out of memory: use a smaller batch, free tensors, or cuda::empty_cache()";
  } else if (status == CUBLAS_STATUS_NOT_SUPPORTED || status == CUBLAS_STATUS_INVALID_VALUE) {
    hint = "; this is a bug in cohort's cuBLAS call (shapes, strides or dtypes it should not have passed): "
           "please report it with the shapes and dtypes of the operands";
  } else if (status == CUBLAS_STATUS_ARCH_MISMATCH) {
    hint = "; this GPU lacks a feature the product needs (bf16 needs compute capability >= 8.0)";
  }
  throw DeviceError(str_cat("cuBLAS error ", api.status_name(status), " (", api.status_string(status), ") in ", what,
                            hint),
                    file, line);
}

}  // namespace cohort::detail
