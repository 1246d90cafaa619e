// The vocabulary every communicator shares: reduce ops, collective names, options structs.
//
//   AllReduceOptions opts;
//   opts.op = ReduceOp::avg;
//   opts.timeout = std::chrono::seconds(30);
//   comm.all_reduce(grad, opts)->wait();
//
// Every collective takes its own options struct (so a field added to one never changes another)
// and every one has a timeout: when it passes, the collective fails with a TimeoutError that names
// the collective, its sequence number, and the ranks that never arrived.
#pragma once

#include <chrono>
#include <cstdint>

namespace cohort::parallel {

using Milliseconds = std::chrono::milliseconds;

// Ten minutes, like a generous NCCL watchdog: long enough for a slow first step (compilation,
// data loading), short enough that a hung job is noticed within one coffee.
inline constexpr Milliseconds kDefaultTimeout{10 * 60 * 1000};

// How elements from different ranks combine. On booleans sum and max are a logical or, min a
// logical and; avg needs a floating dtype. 16-bit floats are combined in float and rounded once.
enum class ReduceOp : uint8_t { sum, avg, max, min };
const char* reduce_op_name(ReduceOp op);  // "sum", "avg", "max", "min"

// What a Work is doing; names the operation in errors and reports.
enum class Collective : uint8_t { all_reduce, broadcast, all_gather, reduce_scatter, barrier, split, send, recv };
const char* collective_name(Collective c);  // "all_reduce", ...

struct AllReduceOptions {
  ReduceOp op = ReduceOp::sum;
  Milliseconds timeout = kDefaultTimeout;
};

struct BroadcastOptions {
  int root = 0;  // the rank whose data everyone receives
  Milliseconds timeout = kDefaultTimeout;
};

struct AllGatherOptions {
  Milliseconds timeout = kDefaultTimeout;
};

struct ReduceScatterOptions {
  ReduceOp op = ReduceOp::sum;
  Milliseconds timeout = kDefaultTimeout;
};

struct BarrierOptions {
  Milliseconds timeout = kDefaultTimeout;
};

struct SendOptions {
  int tag = 0;  // a recv matches a send with the same tag, in order
  Milliseconds timeout = kDefaultTimeout;
};

struct RecvOptions {
  int tag = 0;
  Milliseconds timeout = kDefaultTimeout;
};

}  // namespace cohort::parallel
