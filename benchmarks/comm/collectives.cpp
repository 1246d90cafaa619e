// The four collectives as nccl-tests describes them. For a message of `count` elements:
//   all_reduce      send count, recv count;          algbw = count*size/t;      busbw = algbw * 2(n-1)/n
//   all_gather      send count/n, recv (count/n)*n;  algbw = (count/n)*n*size/t; busbw = algbw * (n-1)/n
//   reduce_scatter  send (count/n)*n, recv count/n;  algbw = (count/n)*n*size/t; busbw = algbw * (n-1)/n
//   broadcast       send count, recv count;          algbw = count*size/t;      busbw = algbw
// The bus bandwidth factor turns the algorithm bandwidth into what each link must carry in the
// best ring algorithm, so it can be compared with the hardware's peak whatever the rank count.
#include <cstring>

#include "bench.h"

namespace cohort::bench {
namespace {

// ---- all_reduce ----
Counts ar_counts(size_t count, int) { return {count, count, count, 0, 0}; }
double ar_bytes(size_t param, size_t es, int) { return static_cast<double>(param * es); }
double ar_factor(int n) { return 2.0 * (n - 1) / n; }
WorkPtr ar_run(Communicator& c, const void* s, void* r, size_t p, DType d, ReduceOp op, int) {
  return c.all_reduce(s, r, static_cast<int64_t>(p), d, {op});
}
void ar_mpi(const MpiReference& m, const void* s, void* r, size_t p, DType d, ReduceOp op, int) {
  m.all_reduce(s, r, p, d, op);
}
void ar_fill(void* s, size_t p, DType d, int rank, int, int, int salt) {
  for (size_t i = 0; i < p; ++i) store_element(s, i, d, input_value(rank, i, d, salt));
}
double ar_expected(size_t i, size_t, DType d, ReduceOp op, int, int n, int, int salt) {
  return reduce_expected(op, n, i, d, salt);
}

// ---- all_gather ----
Counts ag_counts(size_t count, int n) { return {count / n, count / n * n, count / n, count / n, 0}; }
double ag_bytes(size_t param, size_t es, int n) { return static_cast<double>(param * es * n); }
double ag_factor(int n) { return static_cast<double>(n - 1) / n; }
WorkPtr ag_run(Communicator& c, const void* s, void* r, size_t p, DType d, ReduceOp, int) {
  return c.all_gather(s, r, static_cast<int64_t>(p), d);
}
void ag_mpi(const MpiReference& m, const void* s, void* r, size_t p, DType d, ReduceOp, int) { m.all_gather(s, r, p, d); }
double ag_expected(size_t i, size_t p, DType d, ReduceOp, int, int, int, int salt) {
  return input_value(static_cast<int>(i / p), i % p, d, salt);
}

// ---- reduce_scatter ----
Counts rs_counts(size_t count, int n) { return {count / n * n, count / n, count / n, 0, count / n}; }
WorkPtr rs_run(Communicator& c, const void* s, void* r, size_t p, DType d, ReduceOp op, int) {
  return c.reduce_scatter(s, r, static_cast<int64_t>(p), d, {op});
}
void rs_mpi(const MpiReference& m, const void* s, void* r, size_t p, DType d, ReduceOp op, int) {
  m.reduce_scatter(s, r, p, d, op);
}
void rs_fill(void* s, size_t p, DType d, int rank, int n, int, int salt) {
  for (size_t i = 0; i < p * n; ++i) store_element(s, i, d, input_value(rank, i, d, salt));
}
double rs_expected(size_t i, size_t p, DType d, ReduceOp op, int rank, int n, int, int salt) {
  return reduce_expected(op, n, rank * p + i, d, salt);
}

// ---- broadcast ----
double bc_factor(int) { return 1.0; }
WorkPtr bc_run(Communicator& c, const void* s, void* r, size_t p, DType d, ReduceOp, int root) {
  return c.broadcast(s, r, static_cast<int64_t>(p), d, {root});
}
void bc_mpi(const MpiReference& m, const void* s, void* r, size_t p, DType d, ReduceOp, int root) {
  m.broadcast(s, r, p, d, root);
}
void bc_fill(void* s, size_t p, DType d, int rank, int, int root, int salt) {
  if (rank == root) ar_fill(s, p, d, rank, 0, 0, salt);
}
double bc_expected(size_t i, size_t, DType d, ReduceOp, int, int, int root, int salt) {
  return input_value(root, i, d, salt);
}

const CollectiveDesc kCollectives[] = {
    {"all_reduce", true, false, ar_counts, ar_bytes, ar_factor, ar_run, ar_mpi, ar_fill, ar_expected},
    {"all_gather", false, false, ag_counts, ag_bytes, ag_factor, ag_run, ag_mpi, ar_fill, ag_expected},
    {"reduce_scatter", true, false, rs_counts, ag_bytes, ag_factor, rs_run, rs_mpi, rs_fill, rs_expected},
    {"broadcast", false, true, ar_counts, ar_bytes, bc_factor, bc_run, bc_mpi, bc_fill, bc_expected},
};

}  // namespace

const CollectiveDesc* find_collective(const std::string& name) {
  for (const auto& c : kCollectives) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

std::vector<std::string> collective_names() {
  std::vector<std::string> names;
  for (const auto& c : kCollectives) names.emplace_back(c.name);
  return names;
}

// ---- elements and reference values (independent of the backends) ----

void store_element(void* buf, size_t i, DType dtype, double value) {
  dispatch(dtype, "store", [&](auto tag) {
    using T = decltype(tag);
    static_cast<T*>(buf)[i] = T(static_cast<acc_t<T>>(value));
  });
}

double load_element(const void* buf, size_t i, DType dtype) {
  return dispatch(dtype, "load", [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(static_cast<acc_t<T>>(static_cast<const T*>(buf)[i]));
  });
}

// Small integers, exact in every dtype; sums over a few dozen ranks stay exact even in bf16.
double input_value(int rank, size_t i, DType dtype, int salt) {
  const int64_t v = static_cast<int64_t>((i * 7 + static_cast<size_t>(rank) * 13 + static_cast<size_t>(salt) * 5) % 5);
  if (dtype == DType::boolean) return v == 0 ? 1.0 : 0.0;
  return static_cast<double>(v - 2);
}

double reduce_expected(ReduceOp op, int nranks, size_t i, DType dtype, int salt) {
  double acc = input_value(0, i, dtype, salt);
  for (int r = 1; r < nranks; ++r) {
    const double v = input_value(r, i, dtype, salt);
    if (op == ReduceOp::max || (dtype == DType::boolean && op != ReduceOp::min)) {
      acc = acc < v ? v : acc;
    } else if (op == ReduceOp::min) {
      acc = v < acc ? v : acc;
    } else {
      acc += v;
    }
  }
  if (op != ReduceOp::avg) return acc;
  return dispatch_floating(dtype, "avg", [&](auto tag) {
    using T = decltype(tag);
    using A = acc_t<T>;
    return static_cast<double>(static_cast<A>(T(static_cast<A>(acc) / static_cast<A>(nranks))));
  });
}

const char* nccl_type_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float";
    case DType::f64: return "double";
    case DType::bf16: return "bfloat16";
    case DType::f16: return "half";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::boolean: return "bool";
  }
  return "?";
}

bool parse_dtype(const std::string& t, DType& out) {
  const std::pair<const char*, DType> names[] = {
      {"float", DType::f32}, {"f32", DType::f32},      {"float32", DType::f32}, {"double", DType::f64},
      {"f64", DType::f64},   {"float64", DType::f64},  {"bfloat16", DType::bf16}, {"bf16", DType::bf16},
      {"half", DType::f16},  {"f16", DType::f16},      {"float16", DType::f16}, {"int32", DType::i32},
      {"i32", DType::i32},   {"int", DType::i32},      {"int64", DType::i64},   {"i64", DType::i64},
      {"bool", DType::boolean}};
  for (const auto& [name, d] : names) {
    if (t == name) {
      out = d;
      return true;
    }
  }
  return false;
}

bool parse_op(const std::string& t, ReduceOp& out) {
  const std::pair<const char*, ReduceOp> names[] = {
      {"sum", ReduceOp::sum}, {"avg", ReduceOp::avg}, {"max", ReduceOp::max}, {"min", ReduceOp::min}};
  for (const auto& [name, op] : names) {
    if (t == name) {
      out = op;
      return true;
    }
  }
  return false;
}

}  // namespace cohort::bench
