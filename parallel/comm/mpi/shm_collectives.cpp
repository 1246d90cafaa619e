// Collectives through shared memory, in pipeline steps.
//
// Step g uses staging buffer b = g % 2 of every rank, and result buffer b. Three counters per
// rank say how far it got:
//   in[r]  = g+1 once rank r has copied its step-g input into stage(r, b),
//   red[r] = g+1 once rank r has finished reading the staging buffers of step g,
//   out[r] = g+1 once rank r has finished reading result(b) for step g.
// A rank may overwrite stage(me, b) at step g once every red[j] >= g-1 (step g-2, the previous
// user of b, has been read by everyone), and result(b) once every out[j] >= g-1. Two buffers let a
// rank stage step g+1 while slower ranks still read step g. Every step leaves all three counters
// of every rank at g+1, whatever the collective, so collectives of any kind follow each other
// without resetting anything; every rank computes the same number of steps from the same
// arguments.
//
// All-reduce of a large buffer is a reduce-scatter plus an all-gather per step: each rank stages
// one chunk of its input, reduces its slice of the chunk across everyone's staging buffers into
// result(b) (and its own output), and then copies the other ranks' slices out of result(b). Chunks
// are cache-sized, so after the first copy the data moves between caches, not through DRAM: per
// element, each rank reads its input once and writes its output once from/to main memory.
#include "shm_collectives-impl.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "../reduce-impl.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace cohort::parallel::detail {
namespace {

// Copies with non-temporal stores: for outputs much larger than the caches, writing around them
// saves the read-for-ownership of every destination line (a third of the memory traffic of a
// large all-reduce) and keeps the staging buffers cached. The caller fences once at the end.
void copy_streaming(char* dst, const char* src, size_t bytes) {
#if defined(__SSE2__)
  while (bytes > 0 && (reinterpret_cast<uintptr_t>(dst) & 15) != 0) {
    *dst++ = *src++;
    --bytes;
  }
  for (; bytes >= 64; bytes -= 64, dst += 64, src += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(dst + 48), d);
  }
#endif
  std::memcpy(dst, src, bytes);
}

void store_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

constexpr auto kIn = &RankCounters::in;
constexpr auto kRed = &RankCounters::red;
constexpr auto kOut = &RankCounters::out;

}  // namespace

ShmCollectives::ShmCollectives(ShmSegment& segment, int rank, size_t one_shot_bytes, size_t streaming_bytes)
    : seg_(segment),
      rank_(rank),
      size_(segment.size()),
      one_shot_bytes_(std::min(one_shot_bytes, segment.chunk_bytes())),
      streaming_bytes_(streaming_bytes) {}

void ShmCollectives::await_one(int rank, Counter RankCounters::*which, uint64_t target, ShmWaiter& w) {
  const std::atomic<uint64_t>& c = (seg_.counters(rank).*which).value;
  for (uint64_t it = 0; c.load(std::memory_order_acquire) < target; ++it) w.pause(it);
}

void ShmCollectives::await_all(Counter RankCounters::*which, uint64_t target, ShmWaiter& w) {
  for (int r = 0; r < size_; ++r) {
    if (r != rank_) await_one(r, which, target, w);
  }
}

void ShmCollectives::publish(Counter RankCounters::*which, uint64_t value) {
  (seg_.counters(rank_).*which).value.store(value, std::memory_order_release);
}

void ShmCollectives::acquire_stage(uint64_t g, ShmWaiter& w) {
  if (g >= 2) await_all(kRed, g - 1, w);
}

void ShmCollectives::acquire_result(uint64_t g, ShmWaiter& w) {
  if (g >= 2) await_all(kOut, g - 1, w);
}

void ShmCollectives::finish_step(uint64_t g) {
  publish(kIn, g + 1);
  publish(kRed, g + 1);
  publish(kOut, g + 1);
}

void ShmCollectives::all_reduce(const void* input, void* output, int64_t count, DType dtype, ReduceOp op,
                                ShmWaiter& w) {
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  if (static_cast<size_t>(count) * element_size(dtype) <= one_shot_bytes_) {
    if (count > 0) all_reduce_one_shot(in, out, count, dtype, op, w);
  } else {
    all_reduce_pipelined(in, out, count, dtype, op, w);
  }
}

// Small buffers: one step, one synchronisation. Everyone stages its whole input and every rank
// reduces all of it (reading size x count elements is cheaper than a second round trip).
void ShmCollectives::all_reduce_one_shot(const char* in, char* out, int64_t count, DType dtype, ReduceOp op,
                                         ShmWaiter& w) {
  const size_t bytes = static_cast<size_t>(count) * element_size(dtype);
  const uint64_t g = step_++;
  const int b = static_cast<int>(g & 1);
  acquire_stage(g, w);
  std::memcpy(seg_.stage(rank_, b), in, bytes);
  publish(kIn, g + 1);
  await_all(kIn, g + 1, w);
  const void* inputs[64];
  std::vector<const void*> many;
  const void** ptrs = inputs;
  if (size_ > 64) {
    many.resize(size_);
    ptrs = many.data();
  }
  for (int r = 0; r < size_; ++r) ptrs[r] = seg_.stage(r, b);
  reduce_into(out, ptrs, size_, count, dtype, op);
  publish(kRed, g + 1);
  publish(kOut, g + 1);
}

void ShmCollectives::all_reduce_pipelined(const char* in, char* out, int64_t count, DType dtype, ReduceOp op,
                                          ShmWaiter& w) {
  const size_t es = element_size(dtype);
  const int64_t per_step = static_cast<int64_t>(seg_.chunk_bytes() / es);
  // Slice edges on 64-byte boundaries, so two ranks never write the same cache line of result(b).
  const int64_t unit = std::max<int64_t>(1, static_cast<int64_t>(64 / es));
  // Out of place only: in place, the output lines were just read (staged) and are still cached,
  // where ordinary stores are cheaper than evicting them.
  const bool stream = streaming_bytes_ > 0 && static_cast<size_t>(count) * es >= streaming_bytes_ && in != out;
  auto copy_out = [stream](char* dst, const char* src, size_t bytes) {
    if (stream) {
      copy_streaming(dst, src, bytes);
    } else {
      std::memcpy(dst, src, bytes);
    }
  };
  std::vector<const void*> ptrs(size_);
  for (int64_t off = 0; off < count; off += per_step) {
    const int64_t m = std::min(per_step, count - off);  // elements this step
    const int64_t units = (m + unit - 1) / unit;
    auto edge = [&](int r) { return std::min(m, units * r / size_ * unit); };
    const int64_t lo = edge(rank_), hi = edge(rank_ + 1);
    const uint64_t g = step_++;
    const int b = static_cast<int>(g & 1);

    acquire_stage(g, w);
    std::memcpy(seg_.stage(rank_, b), in + off * es, m * es);
    publish(kIn, g + 1);

    await_all(kIn, g + 1, w);
    acquire_result(g, w);
    for (int r = 0; r < size_; ++r) ptrs[r] = seg_.stage(r, b) + lo * es;
    char* mine = seg_.result(b) + lo * es;
    reduce_into(mine, ptrs.data(), size_, hi - lo, dtype, op);
    publish(kRed, g + 1);
    copy_out(out + (off + lo) * es, mine, (hi - lo) * es);

    await_all(kRed, g + 1, w);
    copy_out(out + off * es, seg_.result(b), lo * es);
    copy_out(out + (off + hi) * es, seg_.result(b) + hi * es, (m - hi) * es);
    publish(kOut, g + 1);
  }
  if (stream) store_fence();  // the output is complete before the caller is told so
}

void ShmCollectives::broadcast(const void* input, void* output, int64_t count, DType dtype, int root, ShmWaiter& w) {
  const size_t es = element_size(dtype);
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  const int64_t per_step = static_cast<int64_t>(seg_.chunk_bytes() / es);
  for (int64_t off = 0; off < count; off += per_step) {
    const int64_t m = std::min(per_step, count - off);
    const uint64_t g = step_++;
    const int b = static_cast<int>(g & 1);
    if (rank_ == root) {
      acquire_stage(g, w);
      std::memcpy(seg_.stage(root, b), in + off * es, m * es);
      publish(kIn, g + 1);
      if (out != in) std::memcpy(out + off * es, in + off * es, m * es);
    } else {
      publish(kIn, g + 1);
      await_one(root, kIn, g + 1, w);
      std::memcpy(out + off * es, seg_.stage(root, b), m * es);
    }
    finish_step(g);
  }
}

void ShmCollectives::all_gather(const void* input, void* output, int64_t count, DType dtype, ShmWaiter& w) {
  const size_t es = element_size(dtype);
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  const int64_t per_step = static_cast<int64_t>(seg_.chunk_bytes() / es);
  for (int64_t off = 0; off < count; off += per_step) {
    const int64_t m = std::min(per_step, count - off);
    const uint64_t g = step_++;
    const int b = static_cast<int>(g & 1);
    acquire_stage(g, w);
    std::memcpy(seg_.stage(rank_, b), in + off * es, m * es);
    publish(kIn, g + 1);
    await_all(kIn, g + 1, w);
    for (int r = 0; r < size_; ++r) std::memcpy(out + (r * count + off) * es, seg_.stage(r, b), m * es);
    finish_step(g);
  }
}

// Each step stages m elements of every destination block (size x m), then each rank reduces
// its own block's m elements across everyone's staging buffers straight into its output.
void ShmCollectives::reduce_scatter(const void* input, void* output, int64_t count, DType dtype, ReduceOp op,
                                    ShmWaiter& w) {
  const size_t es = element_size(dtype);
  const char* in = static_cast<const char*>(input);
  char* out = static_cast<char*>(output);
  const int64_t per_step = std::max<int64_t>(1, static_cast<int64_t>(seg_.chunk_bytes() / es / size_));
  std::vector<const void*> ptrs(size_);
  for (int64_t off = 0; off < count; off += per_step) {
    const int64_t m = std::min(per_step, count - off);
    const uint64_t g = step_++;
    const int b = static_cast<int>(g & 1);
    acquire_stage(g, w);
    for (int r = 0; r < size_; ++r) {
      std::memcpy(seg_.stage(rank_, b) + r * m * es, in + (r * count + off) * es, m * es);
    }
    publish(kIn, g + 1);
    await_all(kIn, g + 1, w);
    for (int r = 0; r < size_; ++r) ptrs[r] = seg_.stage(r, b) + rank_ * m * es;
    reduce_into(out + off * es, ptrs.data(), size_, m, dtype, op);
    finish_step(g);
  }
}

void ShmCollectives::barrier(ShmWaiter& w) {
  const uint64_t g = step_++;
  publish(kIn, g + 1);
  await_all(kIn, g + 1, w);
  finish_step(g);
}

}  // namespace cohort::parallel::detail
