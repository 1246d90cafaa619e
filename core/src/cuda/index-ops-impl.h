// Indexing, joining and random-number kernels on CUDA tensors, as the op files call them
// (implementation-only header, free of CUDA types so that every build compiles the callers;
// cuda/stubs_index.cpp throws in a build without CUDA). Implemented in index.cu and random.cu.
//
// Indices arrive as contiguous i64 tensors on the output's device; the op files convert them, and
// keep their argument checks and autograd in one place for both devices.
//
// Range checks. A kernel never reads or writes outside a tensor: an index outside [0, size) is
// skipped. With `check`, the entry point also reports one: the kernel raises a flag in device
// memory, the host copies the flag back after the launch (which waits for the stream) and the
// function returns false; the op then finds the first bad entry on the host and throws the CPU's
// IndexError, word for word. Ops pass check = false for an index already known to be in range
// (checked on the host before it was copied over, or by the forward op whose gradient this is), and
// then nothing waits. PyTorch's device-side assert was not followed: it leaves the CUDA context
// unusable, so a bad token id would end the process instead of raising an error the caller can
// catch. The price is one wait per op whose index lives on the GPU and was not checked before.
#pragma once

#include <cstdint>

#include "cohort/core/tensor.h"

namespace cohort::detail::cuda {

// ---- indexing (index.cu) ----

// out (outer, K, inner) = rows of x (outer, size, inner) picked by index (K):
// out[o, k, :] = x[o, index[k], :]. out and x contiguous, same dtype (any).
bool index_select(const Tensor& out, const Tensor& x, const Tensor& index, int64_t outer, int64_t size, int64_t inner,
                  bool check);

// out (outer, size, inner) += source (outer, K, inner) at rows index (K):
// out[o, index[k], :] += source[o, k, :]. out and source contiguous, same numeric dtype. The sums
// use atomics: rows picked several times add in no fixed order, so 16-bit and float results may
// differ in the last bits from run to run and from the CPU (which adds in index order).
bool index_add(const Tensor& out, const Tensor& source, const Tensor& index, int64_t outer, int64_t size, int64_t inner,
               bool check);

// out (index's shape, contiguous) = x gathered along dim: out[c] = x[c with c[dim] = index[c]].
// x has index's rank (1 to kMaxIndexDims) and any strides; same dtype as out (any).
bool gather(const Tensor& out, const Tensor& x, const Tensor& index, int64_t dim, bool check);

// out (contiguous) += source scattered along dim: out[c with c[dim] = index[c]] += source[c] for
// every c in index's shape. source (any strides) and out have index's rank and out's numeric dtype.
// Atomics, as index_add.
bool scatter_add(const Tensor& out, const Tensor& source, const Tensor& index, int64_t dim, bool check);

// The most dims gather and scatter_add take on CUDA.
constexpr int kMaxIndexDims = 8;

// out's slice [offset, offset + src.size(dim)) along dim = src, for cat: out and src contiguous,
// same dtype, equal sizes in every other dim.
void copy_into_slice(const Tensor& out, const Tensor& src, int64_t dim, int64_t offset);

// ---- random numbers (random.cu) ----
//
// The CPU's draws, bit for bit: element i of a contiguous tensor comes from word i % 4 of Philox
// 4x32-10 counter `first + i / 4` under `seed` (generator.cpp, factory.cpp random_fill). The host
// reserves the counters from the Generator exactly as the CPU path does, so CPU and CUDA programs
// with the same seed draw the same numbers.

enum class RandomKind : uint8_t {
  uniform,  // [0, 1): word / 2^32 (rand)
  normal,   // Box-Muller in double on words (0, 1), (2, 3) (randn)
  integer,  // low + ((word_k << 32 | word_(k+1)%4) % range) (randint)
};
// t (contiguous, any dtype) = the draws converted as the CPU's cast<T>(double).
void random_fill(const Tensor& t, RandomKind kind, uint64_t seed, uint64_t first, int64_t low = 0,
                 uint64_t range = 1);

// Dropout: mask[i] = uniform(i) >= p and out[i] = mask[i] ? x[i] * scale : 0 (scale in the
// computing type, as on the CPU). out, mask (bool) and x contiguous of one shape; x floating.
void dropout(const Tensor& out, const Tensor& mask, const Tensor& x, double p, double scale, uint64_t seed,
             uint64_t first);
// Its gradient: out = mask ? g * scale : 0 over one shape (any strides).
void dropout_backward(const Tensor& out, const Tensor& g, const Tensor& mask, double scale);

}  // namespace cohort::detail::cuda
