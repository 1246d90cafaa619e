// Opens cuBLAS with dlopen on first use and looks up the functions cohort calls (see cublas-impl.h
// for why it is not linked). CMake sets COHORT_CUBLAS_SONAME (libcublas.so.<toolkit major>) and
// COHORT_CUDA_LIBRARY_DIR (the toolkit's library directory) on this file.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

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
#define COHORT_CUBLASLT_SIGNATURE(member, function)                                                \
  static_assert(std::is_same_v<decltype(static_cast<decltype(CublasLtApi::member)>(&function)), \
                               decltype(CublasLtApi::member)>,                                      \
                #function " has another signature than CublasLtApi::" #member)
COHORT_CUBLASLT_SIGNATURE(create, cublasLtCreate);
COHORT_CUBLASLT_SIGNATURE(desc_create, cublasLtMatmulDescCreate);
COHORT_CUBLASLT_SIGNATURE(desc_destroy, cublasLtMatmulDescDestroy);
COHORT_CUBLASLT_SIGNATURE(desc_set, cublasLtMatmulDescSetAttribute);
COHORT_CUBLASLT_SIGNATURE(layout_create, cublasLtMatrixLayoutCreate);
COHORT_CUBLASLT_SIGNATURE(layout_destroy, cublasLtMatrixLayoutDestroy);
COHORT_CUBLASLT_SIGNATURE(pref_create, cublasLtMatmulPreferenceCreate);
COHORT_CUBLASLT_SIGNATURE(pref_destroy, cublasLtMatmulPreferenceDestroy);
COHORT_CUBLASLT_SIGNATURE(pref_set, cublasLtMatmulPreferenceSetAttribute);
COHORT_CUBLASLT_SIGNATURE(heuristic, cublasLtMatmulAlgoGetHeuristic);
COHORT_CUBLASLT_SIGNATURE(matmul, cublasLtMatmul);
#undef COHORT_CUBLASLT_SIGNATURE

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

// cuBLASLt's soname: cuBLAS's with "Lt" after "libcublas".
std::string lt_soname() {
  std::string s = COHORT_CUBLAS_SONAME;
  const size_t at = s.find("libcublas");
  return at == std::string::npos ? "libcublasLt.so" : s.insert(at + 9, "Lt");
}

std::unique_ptr<CublasLtApi> load_lt() {
  if (const char* v = std::getenv("COHORT_CUBLASLT"); v != nullptr && std::string_view(v) == "0") return nullptr;
  const CublasApi& api = cublas();  // first: it loads cuBLASLt as its dependency, found by soname next
  std::vector<std::string> candidates = {lt_soname(), std::string(COHORT_CUDA_LIBRARY_DIR) + "/" + lt_soname()};
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(api.gemm_ex), &info) != 0 && info.dli_fname != nullptr) {
    const std::string path = info.dli_fname;
    candidates.push_back(path.substr(0, path.rfind('/') + 1) + lt_soname());
  }
  void* lib = nullptr;
  for (const std::string& c : candidates) {
    if ((lib = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
  }
  if (lib == nullptr) {
    std::fprintf(stderr, "cohort: %s could not be loaded; linear layers add their bias without it (slower)\n",
                 lt_soname().c_str());
    return nullptr;
  }
  auto api_lt = std::make_unique<CublasLtApi>();
  try {
    look_up(lib, "cublasLtCreate", api_lt->create);
    look_up(lib, "cublasLtMatmulDescCreate", api_lt->desc_create);
    look_up(lib, "cublasLtMatmulDescDestroy", api_lt->desc_destroy);
    look_up(lib, "cublasLtMatmulDescSetAttribute", api_lt->desc_set);
    look_up(lib, "cublasLtMatrixLayoutCreate", api_lt->layout_create);
    look_up(lib, "cublasLtMatrixLayoutDestroy", api_lt->layout_destroy);
    look_up(lib, "cublasLtMatmulPreferenceCreate", api_lt->pref_create);
    look_up(lib, "cublasLtMatmulPreferenceDestroy", api_lt->pref_destroy);
    look_up(lib, "cublasLtMatmulPreferenceSetAttribute", api_lt->pref_set);
    look_up(lib, "cublasLtMatmulAlgoGetHeuristic", api_lt->heuristic);
    look_up(lib, "cublasLtMatmul", api_lt->matmul);
  } catch (const DeviceError& e) {
    std::fprintf(stderr, "cohort: %s; linear layers add their bias without cuBLASLt (slower)\n", e.what());
    return nullptr;
  }
  return api_lt;
}

}  // namespace

const CublasLtApi* cublaslt() {
  static const std::unique_ptr<CublasLtApi> api = load_lt();
  return api.get();
}

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
