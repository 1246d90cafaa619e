// Checks that run on any Communicator (local threads, MPI processes): every collective, every
// dtype and op, in-place and out-of-place, against tests/parallel/reference.h. Each rank calls
// the same check with its own communicator; failures are reported with gtest's EXPECT (thread-safe).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "cohort/parallel/comm/communicator.h"
#include "reference.h"

namespace cohort::parallel::testing {

inline std::string label(const Communicator& c, const char* what, DType dt, int64_t n, const char* extra = "") {
  return std::string(what) + " " + dtype_name(dt) + " n=" + std::to_string(n) + " " + extra + " on rank " +
         std::to_string(c.rank()) + "/" + std::to_string(c.size()) + " (" + c.backend() + ")";
}

inline void check_all_reduce(Communicator& comm, const std::vector<int64_t>& sizes) {
  int salt = 0;
  for (DType dt : all_dtypes()) {
    const size_t es = element_size(dt);
    for (ReduceOp op : ops_for(dt)) {
      for (int64_t n : sizes) {
        for (bool in_place : {false, true}) {
          ++salt;
          std::vector<char> in(n * es + 1), out(n * es + 1);
          fill_input(in.data(), n, dt, comm.rank(), salt);
          void* dst = in_place ? in.data() : out.data();
          comm.all_reduce(in.data(), dst, n, dt, {op})->wait();
          std::string first;
          int64_t wrong = count_wrong(dst, n, dt, [&](int64_t i) { return expected_reduce(op, comm.size(), i, dt, salt); },
                                      &first);
          EXPECT_EQ(wrong, 0) << label(comm, "all_reduce", dt, n, in_place ? "in-place" : "out-of-place") << " op "
                              << reduce_op_name(op) << ": " << first;
        }
      }
    }
  }
}

inline void check_broadcast(Communicator& comm, const std::vector<int64_t>& sizes) {
  int salt = 100;
  for (DType dt : all_dtypes()) {
    const size_t es = element_size(dt);
    for (int64_t n : sizes) {
      for (int root = 0; root < comm.size(); ++root) {
        for (bool in_place : {false, true}) {
          ++salt;
          std::vector<char> in(n * es + 1), out(n * es + 1);
          if (comm.rank() == root) fill_input(in.data(), n, dt, root, salt);
          void* dst = in_place ? in.data() : out.data();
          comm.broadcast(in.data(), dst, n, dt, {root})->wait();
          std::string first;
          int64_t wrong = count_wrong(dst, n, dt, [&](int64_t i) { return input_value(root, i, dt, salt); }, &first);
          EXPECT_EQ(wrong, 0) << label(comm, "broadcast", dt, n, in_place ? "in-place" : "out-of-place") << " root "
                              << root << ": " << first;
        }
      }
    }
  }
}

// Rank r's block holds input_value(r, i) for its i; the gathered output holds every block.
inline void check_all_gather(Communicator& comm, const std::vector<int64_t>& sizes) {
  int salt = 200;
  const int P = comm.size(), me = comm.rank();
  for (DType dt : all_dtypes()) {
    const size_t es = element_size(dt);
    for (int64_t n : sizes) {
      for (bool in_place : {false, true}) {
        ++salt;
        std::vector<char> in(n * es + 1), out(P * n * es + 1);
        char* src = in_place ? out.data() + me * n * es : in.data();
        fill_input(src, n, dt, me, salt);
        comm.all_gather(src, out.data(), n, dt)->wait();
        std::string first;
        int64_t wrong = count_wrong(out.data(), P * n, dt,
                                    [&](int64_t i) { return input_value(static_cast<int>(i / n), i % n, dt, salt); },
                                    &first);
        EXPECT_EQ(wrong, 0) << label(comm, "all_gather", dt, n, in_place ? "in-place" : "out-of-place") << ": "
                            << first;
      }
    }
  }
}

// Every rank's input is P blocks of n; rank r receives the reduction of block r, which is the
// full-length reduction's elements [r*n, (r+1)*n).
inline void check_reduce_scatter(Communicator& comm, const std::vector<int64_t>& sizes) {
  int salt = 300;
  const int P = comm.size(), me = comm.rank();
  for (DType dt : all_dtypes()) {
    const size_t es = element_size(dt);
    for (ReduceOp op : ops_for(dt)) {
      for (int64_t n : sizes) {
        for (bool in_place : {false, true}) {
          ++salt;
          std::vector<char> in(P * n * es + 1), out(n * es + 1);
          fill_input(in.data(), P * n, dt, me, salt);
          void* dst = in_place ? in.data() + me * n * es : out.data();
          comm.reduce_scatter(in.data(), dst, n, dt, {op})->wait();
          std::string first;
          int64_t wrong = count_wrong(dst, n, dt, [&](int64_t i) { return expected_reduce(op, P, me * n + i, dt, salt); },
                                      &first);
          EXPECT_EQ(wrong, 0) << label(comm, "reduce_scatter", dt, n, in_place ? "in-place" : "out-of-place")
                              << " op " << reduce_op_name(op) << ": " << first;
        }
      }
    }
  }
}

// A ring: every rank sends to the next and receives from the previous, twice with two tags.
inline void check_send_recv(Communicator& comm, int64_t n) {
  const int P = comm.size(), me = comm.rank();
  if (P == 1) return;
  const int next = (me + 1) % P, prev = (me + P - 1) % P;
  for (DType dt : {DType::f32, DType::i64, DType::bf16}) {
    const size_t es = element_size(dt);
    for (int tag : {0, 7}) {
      std::vector<char> out(n * es + 1), in(n * es + 1);
      fill_input(out.data(), n, dt, me, tag);
      WorkPtr r = comm.recv(in.data(), n, dt, prev, {tag});
      WorkPtr s = comm.send(out.data(), n, dt, next, {tag});
      s->wait();
      r->wait();
      std::string first;
      int64_t wrong = count_wrong(in.data(), n, dt, [&](int64_t i) { return input_value(prev, i, dt, tag); }, &first);
      EXPECT_EQ(wrong, 0) << label(comm, "send/recv", dt, n) << " tag " << tag << ": " << first;
    }
  }
}

}  // namespace cohort::parallel::testing
