// Fused ("flash") scaled dot-product attention for bf16/f16 q, k, v on tensor cores (WMMA
// 16x16x16 tiles, f32 accumulation): the (L, S) scores never reach global memory.
//
// The unfused path (attention.cu) writes the f32 scores, P, dP and dS of every head to device
// memory and reads them back: about 1.8 GB per layer of a GPT-2-small step at batch 16 x 512
// tokens, some 0.6 ms at an H100's bandwidth, several times the products' own time. Here they
// stay in shared memory. The kernels, and how they tile the work, are in
// flash_attention-kernels.cuh (which a CI test also runs on the CPU: tests/emulation/); this file
// picks the kernel for a call and launches it.
//
// Taken when q, k, v are bf16/f16 with E == Ev in {32, 64, 128}, rows contiguous (last stride 1),
// at most 4 batch dims, and cuda::flash_attention() is on (COHORT_CUDA_FLASH_ATTENTION=0 or
// cuda::set_flash_attention(false) turn it off).
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "blas-ops-impl.h"
#include "cuda-impl.h"
#include "elementwise-ops-impl.h"
#include "flash_attention-kernels.cuh"
#include "loops-impl.cuh"

namespace cohort::detail::cuda {

namespace {

BatchLayout layout_of(const Tensor& t) {
  BatchLayout l;
  l.ndim = static_cast<int>(t.dim()) - 2;
  for (int d = 0; d < l.ndim; ++d) {
    l.sizes[d] = t.size(d);
    l.strides[d] = t.stride(d);
  }
  l.row_stride = t.stride(-2);
  return l;
}

// Opts a kernel into more than 48 KiB of dynamic shared memory: once per kernel (the template
// arguments name it) and thread, again when the thread's device changes (the attribute belongs to
// a device's context; setting it twice is harmless).
template <class T, int E, bool kForward, class Kernel>
void allow_smem(Kernel kernel, int bytes, int device) {
  static thread_local int done_for = -1;
  if (done_for == device) return;
  COHORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  done_for = device;
}

template <class F>
void dispatch_head(int64_t E, F&& f) {
  switch (E) {
    case 32: f(std::integral_constant<int, 32>{}); break;
    case 64: f(std::integral_constant<int, 64>{}); break;
    default: f(std::integral_constant<int, 128>{}); break;
  }
}

template <class F>
void dispatch_half(DType dt, F&& f) {
  if (dt == DType::bf16) {
    f(__nv_bfloat16{});
  } else {
    f(__half{});
  }
}

unsigned grid_of(int64_t batch, int64_t tiles, const char* what) {
  const int64_t blocks = batch * tiles;
  COHORT_CHECK(blocks <= INT32_MAX, ShapeError, what, ": ", batch, " batch entries x ", tiles,
               " tiles is more blocks than one launch takes");
  return static_cast<unsigned>(blocks);
}

}  // namespace

bool flash_attention_applies(const Tensor& q, const Tensor& k, const Tensor& v) {
  if (!q.is_cuda() || !cohort::cuda::flash_attention()) return false;
  if (q.dtype() != DType::bf16 && q.dtype() != DType::f16) return false;
  const int64_t E = q.size(-1);
  if (v.size(-1) != E || (E != 32 && E != 64 && E != 128)) return false;
  if (q.dim() - 2 > kMaxBatchDims) return false;
  if (q.size(-2) == 0 || k.size(-2) == 0) return false;
  for (const Tensor* t : {&q, &k, &v}) {
    if (t->stride(-1) != 1) return false;
  }
  return true;
}

void flash_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                             bool causal, double scale) {
  check_same_cuda_device("scaled_dot_product_attention", out.device(), {&q, &k, &v, &lse});
  COHORT_CHECK(out.stride(-1) == 1 && lse.is_contiguous() && lse.dtype() == DType::f32, DeviceError,
               "flash attention: the output's rows and lse must be contiguous (an internal error)");
  DeviceGuard guard(out.device().index);
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1), batch = lse.numel() / L;
  const int64_t q_tiles = (L + kTile - 1) / kTile;
  const unsigned blocks = grid_of(batch, q_tiles, "scaled_dot_product_attention");
  cudaStream_t stream = stream_of(out);
  dispatch_half(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    dispatch_head(E, [&](auto e) {
      constexpr int kE = decltype(e)::value;
      auto kernel = flash_forward_kernel<T, kE>;
      allow_smem<T, kE, true>(kernel, Smem<kE>::fwd_bytes, out.device().index);
      kernel<<<blocks, kThreads, Smem<kE>::fwd_bytes, stream>>>(
          static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
          static_cast<const T*>(v.raw_data()), static_cast<T*>(out.raw_data()), static_cast<float*>(lse.raw_data()),
          layout_of(q), layout_of(k), layout_of(v), layout_of(out), L, S, q_tiles, causal, static_cast<float>(scale));
      COHORT_CUDA_CHECK_LAUNCH();
    });
  });
}

void flash_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& lse,
                              const Tensor& g_in, const Tensor& dq, const Tensor& dk, const Tensor& dv, bool causal,
                              double scale) {
  check_same_cuda_device("scaled_dot_product_attention backward", q.device(),
                         {&k, &v, &out, &lse, &g_in, &dq, &dk, &dv});
  const Tensor g = g_in.stride(-1) == 1 ? g_in : g_in.contiguous();  // e.g. an expanded gradient
  for (const Tensor* t : {&out, &g, &dk, &dv}) {
    COHORT_CHECK(t->stride(-1) == 1, DeviceError, "flash attention backward: rows must be contiguous (an internal error)");
  }
  DeviceGuard guard(q.device().index);
  const int64_t L = q.size(-2), S = k.size(-2), E = q.size(-1), batch = lse.numel() / L;
  cudaStream_t stream = stream_of(dq);
  const TensorOptions f32 = TensorOptions(DType::f32).with_device(q.device());
  const Tensor delta = Tensor::empty({batch, L}, f32);
  // dQ sums over key tiles from many blocks: in f32, then rounded into dq.
  Shape acc_shape(q.shape().begin(), q.shape().end());
  const Tensor dq_acc = Tensor::empty(acc_shape, f32);
  COHORT_CUDA_CHECK(cudaMemsetAsync(dq_acc.raw_data(), 0, dq_acc.nbytes(), stream));
  const int64_t k_tiles = (S + kTile - 1) / kTile;
  const unsigned blocks = grid_of(batch, k_tiles, "scaled_dot_product_attention backward");
  dispatch_half(q.dtype(), [&](auto tag) {
    using T = decltype(tag);
    flash_delta_kernel<T><<<static_cast<unsigned>((batch * L + kWarps - 1) / kWarps), kThreads, 0, stream>>>(
        static_cast<const T*>(g.raw_data()), static_cast<const T*>(out.raw_data()),
        static_cast<float*>(delta.raw_data()), layout_of(g), layout_of(out), L, E, batch * L);
    COHORT_CUDA_CHECK_LAUNCH();
    dispatch_head(E, [&](auto e) {
      constexpr int kE = decltype(e)::value;
      auto kernel = flash_backward_kernel<T, kE>;
      allow_smem<T, kE, false>(kernel, Smem<kE>::bwd_bytes, q.device().index);
      kernel<<<blocks, kThreads, Smem<kE>::bwd_bytes, stream>>>(
          static_cast<const T*>(q.raw_data()), static_cast<const T*>(k.raw_data()),
          static_cast<const T*>(v.raw_data()), static_cast<const T*>(g.raw_data()),
          static_cast<const float*>(lse.raw_data()), static_cast<const float*>(delta.raw_data()),
          static_cast<float*>(dq_acc.raw_data()), static_cast<T*>(dk.raw_data()), static_cast<T*>(dv.raw_data()),
          layout_of(q), layout_of(k), layout_of(v), layout_of(g), layout_of(dk), layout_of(dv), L, S, k_tiles, causal,
          static_cast<float>(scale));
      COHORT_CUDA_CHECK_LAUNCH();
    });
  });
  copy(dq, dq_acc);  // f32 -> T, into dq's layout
}

}  // namespace cohort::detail::cuda
