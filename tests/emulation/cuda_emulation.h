// A host emulation of the CUDA that cohort's kernels use, so that CI machines (no GPU, no driver)
// run a kernel's own source and compare its results with a reference. Include this first, then the
// kernel header: it defines COHORT_CUDA_EMULATION, which makes such a header (for example
// core/src/cuda/flash_attention-kernels.cuh) take its CUDA names from here instead of CUDA's.
//
//   using namespace cohort::emulation;
//   launch({blocks, threads, smem_bytes, Schedule::random}, [&] { my_kernel<T>(args...); });
//   if (take_errors() != 0) ...  // a deadlock, a misaligned WMMA pointer, ...: the test fails
//
// core/src/cuda/loops-impl.cuh compiles here too (this header includes it at the end): its
// host-side launch_elementwise runs, launching through launch_kernel (below), which runs the
// kernel with the launch's grid and records which kernel that was (take_launched_kernels), and its
// plans come from host tensors (a pointer is a pointer here).
//
// The model:
// - Every CUDA thread of a block is a fiber with its own stack. One runs at a time, until it
//   reaches a synchronisation point: __syncthreads, __syncwarp, a shuffle or a WMMA load. Then the
//   next runnable thread runs: the lowest-numbered (Schedule::in_order), the highest (reverse) or
//   one at random (random, seeded). Code that relies on an order the hardware does not promise (a
//   missing barrier) computes different values under some schedule. Blocks run one after another.
// - Dynamic shared memory is a buffer of the launch's exact size (an AddressSanitizer build sees
//   overruns), filled with 0xff bytes (NaN in f32, bf16 and f16) before each block: a read of
//   what no thread wrote shows up as NaN in the results.
// - WMMA, 16x16x16 fragments only. A load stages, at the calling lane's arrival, the lane's share
//   of the tile (the elements e, in row-major order of the logical 16x16 matrix, with
//   e % 32 == lane), meets the rest of the warp at a barrier, then gives every lane the whole
//   matrix. A store writes only the lane's share; mma_sync computes it. So a barrier missing between
//   scalar writes and a fragment load, or between a fragment store and scalar reads, makes lanes
//   read elements not yet written, as on the hardware (whose share of a lane differs: it is
//   undocumented). Pointers must be 32-byte aligned, ldm a multiple of 16 bytes, and a fragment in
//   shared memory must end inside it.
// - __syncthreads must be reached by every thread of the block; __syncwarp, shuffles and WMMA
//   loads by all 32 lanes of the warp, with the full mask, and the lanes released together must
//   all be in the same kind of operation. Anything else is reported (as a deadlock, say).
// - atomicAdd is a plain add: threads never run at the same time.
// - uint2 and uint4 (8- and 16-byte vector loads and stores) must be aligned to their size, as on
//   the hardware: a copy from or to a misaligned address is reported, and not made. (A 4-byte
//   access through uint32_t is not checked.)
// - grid_blocks, the size of a grid-stride launch, is at most kMaxGridBlocks, so that such loops
//   go round more than once on a test's small inputs.
// Not emulated: performance, the hardware's fragment layouts, the memory model beyond barriers (no
// reordering, caches or delayed visibility), multi-dimensional launches, streams, partial warp
// masks, and static __shared__ variables (not defined here, so a kernel that declares one fails to
// compile: add it here first).
#pragma once

#define COHORT_CUDA_EMULATION 1

#include <cmath>  // expf, logf, fmaxf, INFINITY for the kernels, as CUDA's device math
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>
#include <vector>

// ---- qualifiers and built-in variables ----

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// The block's dynamic shared memory (CUDA: extern __shared__ __align__(128) char name[]).
#define COHORT_DYNAMIC_SMEM(name) char* name = ::cohort::emulation::dynamic_smem()
#define threadIdx (::cohort::emulation::thread_idx())
#define blockIdx (::cohort::emulation::block_idx())
#define blockDim (::cohort::emulation::block_dim())
#define gridDim (::cohort::emulation::grid_dim())

namespace cohort::emulation {

struct Dim3 {
  unsigned x = 0, y = 0, z = 0;
};

enum class Schedule { in_order, reverse, random };
const char* schedule_name(Schedule s);

constexpr size_t kMaxSmemBytes = 227 * 1024;  // an H100 block's dynamic shared memory, opted in

struct LaunchConfig {
  unsigned blocks = 1;
  unsigned threads = 32;  // a multiple of 32, at most 1024
  size_t smem_bytes = 0;  // dynamic shared memory, at most kMaxSmemBytes
  Schedule schedule = Schedule::in_order;
  uint32_t seed = 1;  // of Schedule::random
};

// Runs `kernel` (a call of the __global__ function with its arguments) as config.threads threads
// in each of config.blocks blocks, one block after another; returns when all have finished.
void launch(const LaunchConfig& config, const std::function<void()>& kernel);

// A kernel, for take_launched_kernels: kernel_id(elementwise_kernel<3, uint32_t, F>).
using KernelId = void (*)();
template <class... Params>
KernelId kernel_id(void (*kernel)(Params...)) {
  return reinterpret_cast<KernelId>(kernel);
}

// The kernels launch_kernel ran since the last call, in order, and resets the list.
std::vector<KernelId> take_launched_kernels();
// The schedule of launch_kernel's launches (initially in order).
void set_kernel_schedule(Schedule schedule, uint32_t seed = 1);
// Records `id`, then launches `kernel` as launch() does, with the schedule above and no dynamic
// shared memory.
void launch_recorded(KernelId id, unsigned blocks, unsigned threads, const std::function<void()>& kernel);

// At most this many blocks in a grid_blocks launch.
constexpr int64_t kMaxGridBlocks = 2;

// The number of errors seen since the last call (each is printed to stderr, the first few in
// full), and resets it.
long take_errors();
void report_error(const char* format, ...) __attribute__((format(printf, 1, 2)));

// ---- for the CUDA names below, not for tests ----

const Dim3& thread_idx();
const Dim3& block_idx();
const Dim3& block_dim();
const Dim3& grid_dim();
char* dynamic_smem();
int lane_id();
void block_sync();
// Waits for the other 31 lanes of the warp, which must be in the same `op` (a string literal).
void warp_sync(unsigned mask, const char* op);
// The warp's exchange buffer for the calling lane's next warp operation: two alternate, so a lane
// that goes on writes into the other one while slower lanes still read this one.
float* warp_stage();        // 256 floats (a WMMA tile)
uint64_t* warp_exchange();  // 32 values (a shuffle)
void check_wmma_pointer(const void* p, unsigned ldm, size_t element_bytes, const char* op);
// Whether a vector copy of `bytes` from src to dst is aligned; reports it if not.
bool check_vector_copy(const void* dst, const void* src, size_t bytes, const char* type);

template <class T>
T shuffle(unsigned mask, T v, int src_lane, const char* op) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  uint64_t* slots = warp_exchange();
  slots[lane_id()] = bits;
  warp_sync(mask, op);
  bits = slots[src_lane];
  std::memcpy(&v, &bits, sizeof(T));
  return v;
}

}  // namespace cohort::emulation

// ---- synchronisation, shuffles, atomics ----

inline void __syncthreads() { ::cohort::emulation::block_sync(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { ::cohort::emulation::warp_sync(mask, "__syncwarp"); }

template <class T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
  if (width != 32) ::cohort::emulation::report_error("__shfl_xor_sync: width %d (only 32 is emulated)", width);
  return ::cohort::emulation::shuffle(mask, v, ::cohort::emulation::lane_id() ^ lane_mask, "__shfl_xor_sync");
}
template <class T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
  if (width != 32) ::cohort::emulation::report_error("__shfl_down_sync: width %d (only 32 is emulated)", width);
  const int lane = ::cohort::emulation::lane_id();
  const int src = lane + static_cast<int>(delta) < 32 ? lane + static_cast<int>(delta) : lane;
  return ::cohort::emulation::shuffle(mask, v, src, "__shfl_down_sync");
}
template <class T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
  if (width != 32) ::cohort::emulation::report_error("__shfl_sync: width %d (only 32 is emulated)", width);
  return ::cohort::emulation::shuffle(mask, v, src_lane & 31, "__shfl_sync");
}

template <class T>
T atomicAdd(T* address, T v) {  // threads never run at the same time
  const T old = *address;
  *address = old + v;
  return old;
}

// ---- 16-bit floats (cuda_bf16.h, cuda_fp16.h): bits, with round-to-nearest-even conversions ----

struct __nv_bfloat16 {
  uint16_t bits;
};
struct __half {
  uint16_t bits;
};

inline float __bfloat162float(__nv_bfloat16 v) {
  const uint32_t u = uint32_t(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return {uint16_t((u >> 16) | 0x40)};  // stays a NaN
  u += 0x7fff + ((u >> 16) & 1);
  return {uint16_t(u >> 16)};
}
inline float __half2float(__half v) {
  const uint32_t sign = uint32_t(v.bits & 0x8000) << 16, e = (v.bits >> 10) & 0x1f, m = v.bits & 0x3ff;
  uint32_t u;
  if (e == 0) {  // zero or subnormal: m * 2^-24
    const float f = std::ldexp(static_cast<float>(m), -24);
    std::memcpy(&u, &f, 4);
    u |= sign;
  } else if (e == 31) {
    u = sign | 0x7f800000u | (m << 13);
  } else {
    u = sign | ((e + 112) << 23) | (m << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline __half __float2half_rn(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = (x >> 16) & 0x8000;
  x &= 0x7fffffffu;
  if (x > 0x7f800000u) return {uint16_t(sign | 0x7e00)};  // NaN
  if (x >= 0x477ff000u) return {uint16_t(sign | 0x7c00)};  // rounds past 65504: infinity
  uint32_t h, rest, half_ulp;
  if (x < 0x38800000u) {  // below 2^-14: a subnormal half (or zero), m * 2^-24
    if (x < 0x33000000u) return {sign};  // at most 2^-25: rounds to zero
    const uint32_t shift = 126 - (x >> 23), m = (x & 0x7fffffu) | 0x800000u;
    h = m >> shift;
    rest = m & ((1u << shift) - 1);
    half_ulp = 1u << (shift - 1);
  } else {
    h = (x >> 13) - (112u << 10);  // exponent rebiased from 127 to 15, 10 mantissa bits
    rest = x & 0x1fffu;
    half_ulp = 0x1000u;
  }
  if (rest > half_ulp || (rest == half_ulp && (h & 1))) ++h;  // may carry into the exponent: right
  return {uint16_t(sign | h)};
}

// ---- vector types (vector_types.h) and streams ----

// Copies check the hardware's alignment (16 or 8 bytes): see check_vector_copy.
struct alignas(16) uint4 {
  unsigned x, y, z, w;
  uint4() = default;
  uint4(const uint4& o) { copy_from(o); }
  uint4& operator=(const uint4& o) {
    copy_from(o);
    return *this;
  }

 private:
  void copy_from(const uint4& o) {
    if (!::cohort::emulation::check_vector_copy(this, &o, sizeof(uint4), "uint4")) return;
    x = o.x;
    y = o.y;
    z = o.z;
    w = o.w;
  }
};
struct alignas(8) uint2 {
  unsigned x, y;
  uint2() = default;
  uint2(const uint2& o) { copy_from(o); }
  uint2& operator=(const uint2& o) {
    copy_from(o);
    return *this;
  }

 private:
  void copy_from(const uint2& o) {
    if (!::cohort::emulation::check_vector_copy(this, &o, sizeof(uint2), "uint2")) return;
    x = o.x;
    y = o.y;
  }
};

using cudaStream_t = struct CUstream_st*;  // never dereferenced: launches run at once, in order

// ---- what the kernels take from block_reduce-impl.cuh (copies: it includes cuda_runtime.h) ----

namespace cohort::detail::cuda {

constexpr int kWarpSize = 32;
constexpr unsigned kFullMask = 0xffffffffu;

template <class T>
inline T warp_reduce_sum(T v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}

template <class T>
inline T nan_max(T a, T b) {
  return (a != a || a > b) ? a : b;
}

template <class T>
inline T warp_reduce_max(T v) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) v = nan_max(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

}  // namespace cohort::detail::cuda

// ---- WMMA (mma.h), 16x16x16 ----

namespace nvcuda::wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static_assert(M == 16 && N == 16 && K == 16, "the emulation has 16x16x16 fragments only");
  // The logical matrix (accumulators: only the lane's share is kept up to date). Not named `x`:
  // code that reads fragment elements by index depends on the hardware's layout, which is not
  // emulated, and fails to compile here.
  float emulated[16][16];
};

inline float element_to_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float element_to_float(__half v) { return __half2float(v); }
inline float element_to_float(float v) { return v; }

// Stages the lane's share of the (16, 16) tile at p (row_major: element (r, c) at p[r * ldm + c],
// else at p[c * ldm + r]), waits for the warp, takes the whole tile.
template <class T, class F>
void load_tile(F& f, const T* p, unsigned ldm, bool row_major_tile, const char* op) {
  ::cohort::emulation::check_wmma_pointer(p, ldm, sizeof(T), op);
  float* stage = ::cohort::emulation::warp_stage();
  for (int e = ::cohort::emulation::lane_id(); e < 256; e += 32) {
    const int r = e / 16, c = e % 16;
    stage[e] = element_to_float(row_major_tile ? p[r * ldm + c] : p[c * ldm + r]);
  }
  ::cohort::emulation::warp_sync(0xffffffffu, op);
  std::memcpy(f.emulated, stage, sizeof f.emulated);
}

template <class Use, class T, class Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
  static_assert(std::is_same_v<Use, matrix_a> || std::is_same_v<Use, matrix_b>, "an accumulator load takes a layout_t");
  static_assert(std::is_same_v<Layout, row_major> || std::is_same_v<Layout, col_major>, "a or b needs its layout");
  load_tile(f, p, ldm, std::is_same_v<Layout, row_major>, "load_matrix_sync");
}

inline void load_matrix_sync(fragment<accumulator, 16, 16, 16, float>& f, const float* p, unsigned ldm,
                             layout_t layout) {
  load_tile(f, p, ldm, layout == mem_row_major, "load_matrix_sync");
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f, unsigned ldm,
                              layout_t layout) {
  ::cohort::emulation::check_wmma_pointer(p, ldm, sizeof(float), "store_matrix_sync");
  for (int e = ::cohort::emulation::lane_id(); e < 256; e += 32) {
    const int r = e / 16, c = e % 16;
    p[layout == mem_row_major ? r * ldm + c : c * ldm + r] = f.emulated[r][c];
  }
}

inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& f, float value) {
  for (auto& row : f.emulated) {
    for (float& x : row) x = value;
  }
}

// d = a b + c, the lane's share of d: products of 16-bit values are exact in f32, summed in f32.
template <class T, class LayoutA, class LayoutB>
void mma_sync(fragment<accumulator, 16, 16, 16, float>& d, const fragment<matrix_a, 16, 16, 16, T, LayoutA>& a,
              const fragment<matrix_b, 16, 16, 16, T, LayoutB>& b, const fragment<accumulator, 16, 16, 16, float>& c) {
  for (int e = ::cohort::emulation::lane_id(); e < 256; e += 32) {
    const int m = e / 16, n = e % 16;
    float s = c.emulated[m][n];
    for (int k = 0; k < 16; ++k) s += a.emulated[m][k] * b.emulated[k][n];
    d.emulated[m][n] = s;
  }
}

}  // namespace nvcuda::wmma

// ---- loops-impl.cuh: device element types (to_acc, from_acc, convert) and the elementwise loops,
// with the host side that cuda-impl.h gives them under nvcc ----

namespace cohort {
class Tensor;
}

namespace cohort::detail::cuda {

// In this namespace, not cohort::detail as cuda-impl.h's are: a test that links cohort_core built
// with CUDA gets those too, and must not call them (they are the CUDA runtime's).
class DeviceGuard {
 public:
  explicit DeviceGuard(int) {}
};
inline cudaStream_t stream_of(const Tensor&) { return nullptr; }
int64_t grid_blocks(int64_t n, int threads_per_block);  // at most emulation::kMaxGridBlocks

// kernel<<<blocks, threads, 0, stream>>>(args...) on the CPU, recorded (take_launched_kernels).
template <class... Params, class... Args>
void launch_kernel(void (*kernel)(Params...), unsigned blocks, unsigned threads, cudaStream_t,
                   const Args&... args) {
  ::cohort::emulation::launch_recorded(::cohort::emulation::kernel_id(kernel), blocks, threads,
                                       [&] { kernel(args...); });
}

}  // namespace cohort::detail::cuda

#include "cuda/loops-impl.cuh"
