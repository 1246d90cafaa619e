// The elementwise loops (core/src/cuda/loops-impl.cuh), their own source, run on the CPU through
// cuda_emulation.h on cohort CPU tensors (in the emulation a pointer is a pointer, so a host tensor
// is device memory) and compared byte for byte with cohort's CPU ops on the same inputs.
//
// What it checks: launch_elementwise's choice between the vectorised loop (4 elements per thread,
// aligned contiguous operands) and the plain grid-stride one, the tail that the vectorised loop
// leaves to the plain one, the plain loop's flat and strided plans (plan_offsets) with 32- and
// 64-bit indices, broadcast operands (stride 0: splatted in the vectorised loop), vector copies
// only at aligned addresses (uint2/uint4 report a misaligned one), no write outside the output's
// view (its whole buffer is compared, gaps included), no element left unwritten (outputs start as
// 0xff bytes: NaN, or a bool that is neither 0 nor 1). Which kernels ran is part of each case's
// expectation, so a vectorised loop that silently stops being taken fails.
// What it does not check: performance, launches of more than kMaxGridBlocks blocks (the emulation
// caps grid_blocks so that the grid-stride loops go round), memory-model effects. tests/gpu checks
// the ops on a GPU against the CPU.
//
// One line per op; exits 1 if any case fails. After editing loops-impl.cuh:
//   ninja cohort_elementwise_emulated && ctest -R emulation --output-on-failure
#include "cuda_emulation.h"
// The emulation first: loops-impl.cuh (included by it) takes its CUDA names from it.

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cohort/core/core.h"

namespace {

using cohort::DType;
using cohort::Generator;
using cohort::Shape;
using cohort::Tensor;
using cohort::emulation::KernelId;
using cohort::emulation::kernel_id;
namespace cu = cohort::detail::cuda;
using bf16 = __nv_bfloat16;

// ---- the functors, as elementwise.cu has them ----

template <class T>
struct AddOf {  // BinaryCompute's add with alpha 1
  T operator()(T x, T y) const { return cu::from_acc<T>(cu::to_acc(x) + cu::to_acc(y)); }
};

template <class T>
struct LessOf {  // CompareCompute's lt
  bool operator()(T x, T y) const { return cu::to_acc(x) < cu::to_acc(y); }
};

template <class To, class Ti>
struct ConvertOf {  // ConvertCompute
  To operator()(Ti v) const { return cu::convert<To, Ti>(v); }
};

template <class T>
struct FillFn {  // elementwise.cu's, which launch_elementwise runs without an adapter
  T value;
  size_t elem_size(int) const { return sizeof(T); }
  void operator()(char* const (&p)[1]) const { *reinterpret_cast<T*>(p[0]) = value; }
};

constexpr double kFillValue = 0.1;

using AddF32 = cu::BinaryFn<float, float, float, AddOf<float>>;
using AddBf16 = cu::BinaryFn<bf16, bf16, bf16, AddOf<bf16>>;
using CastF32Bf16 = cu::UnaryFn<bf16, float, ConvertOf<bf16, float>>;
using LtF32 = cu::BinaryFn<bool, float, float, LessOf<float>>;
using FillF64 = FillFn<double>;

// ---- cases ----

enum class Op { add_f32, add_f32_int64_index, add_bf16, cast_f32_bf16, lt_f32, fill_f64, add_inplace_f32 };

struct OpInfo {
  const char* name;
  DType out, in;
  int inputs;     // besides the output
  bool in_place;  // the output is the first input
};

OpInfo info(Op op) {
  switch (op) {
    case Op::add_f32: return {"add f32", DType::f32, DType::f32, 2, false};
    case Op::add_f32_int64_index: return {"add f32, 64-bit index", DType::f32, DType::f32, 2, false};
    case Op::add_bf16: return {"add bf16", DType::bf16, DType::bf16, 2, false};
    case Op::cast_f32_bf16: return {"cast f32->bf16", DType::bf16, DType::f32, 1, false};
    case Op::lt_f32: return {"lt f32", DType::boolean, DType::f32, 2, false};
    case Op::fill_f64: return {"fill f64", DType::f64, DType::f64, 0, false};
    case Op::add_inplace_f32: return {"add_ f32 in place", DType::f32, DType::f32, 2, true};
  }
  return {};
}

// How the operands lie in memory.
enum class Layout {
  contiguous,  // every operand
  misaligned,  // the first input (fill: the output) starts one element into its buffer
  broadcast,   // the last input is a 0-dim tensor expanded
  strided,     // every operand, output included, takes every other element of its buffer
  transposed,  // (r, c) from (c, r) storage: every input (fill: the output); a 2-dim plan
};

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::contiguous: return "contiguous";
    case Layout::misaligned: return "misaligned";
    case Layout::broadcast: return "broadcast";
    case Layout::strided: return "strided";
    case Layout::transposed: return "transposed";
  }
  return "?";
}

// One operand's view of a buffer of its own.
enum class Kind {
  plain,          // (n)
  offset_by_one,  // (n) from element 1 of n + 1
  scalar,         // a 0-dim tensor expanded to (n)
  every_other,    // (n) with stride 2
  matrix,         // (r, c), contiguous
  transposed,     // (r, c) from (c, r) storage
};

struct Operand {
  Kind kind;
  Tensor buffer, view;
};

// n = r * c with r the smallest factor above 1 (r = 0: n is prime or 1).
int64_t rows_of(int64_t n) {
  for (int64_t r = 2; r * r <= n; ++r) {
    if (n % r == 0) return r;
  }
  return 0;
}

Shape buffer_shape(Kind kind, int64_t n) {
  const int64_t r = rows_of(n), c = r != 0 ? n / r : 0;
  switch (kind) {
    case Kind::plain: return {n};
    case Kind::offset_by_one: return {n + 1};
    case Kind::scalar: return {};
    case Kind::every_other: return {2 * n};
    case Kind::matrix: return {r, c};
    case Kind::transposed: return {c, r};
  }
  return {};
}

Tensor view_of(const Tensor& buffer, Kind kind, int64_t n) {
  switch (kind) {
    case Kind::plain:
    case Kind::matrix: return buffer;
    case Kind::offset_by_one: return buffer.narrow(0, 1, n);
    case Kind::scalar: return buffer.expand({n});
    case Kind::every_other: return buffer.slice(0, 0, 2 * n, 2);
    case Kind::transposed: return buffer.t();
  }
  return buffer;
}

Operand make_operand(Kind kind, DType dtype, int64_t n, bool written, bool small_ints, Generator& gen) {
  const Shape shape = buffer_shape(kind, n);
  Operand o{kind, Tensor(), Tensor()};
  if (written) {  // an output: 0xff bytes, which no result has
    o.buffer = Tensor::empty(shape, dtype);
    std::memset(o.buffer.raw_data(), 0xff, o.buffer.nbytes());
  } else if (small_ints) {  // comparisons: ties and both outcomes
    o.buffer = cohort::randint(-2, 3, shape, DType::i64, &gen).to(dtype);
  } else {
    o.buffer = cohort::randn(shape, DType::f32, &gen).to(dtype);
  }
  o.view = view_of(o.buffer, kind, n);
  return o;
}

// The case's operands: [0] the output, then the inputs (in place: [1] is [0]).
std::vector<Operand> make_operands(Op op, Layout layout, int64_t n, Generator& gen) {
  const OpInfo oi = info(op);
  // The distinct operands: the written one (output, or in place the first input), then the rest.
  const int count = oi.in_place ? oi.inputs : oi.inputs + 1;
  const int first_input = oi.inputs == 0 || oi.in_place ? 0 : 1;  // fill: the output takes its place
  std::vector<Operand> distinct;
  for (int k = 0; k < count; ++k) {
    const bool input = k >= first_input;
    Kind kind = Kind::plain;
    switch (layout) {
      case Layout::contiguous: break;
      case Layout::misaligned: kind = k == first_input ? Kind::offset_by_one : Kind::plain; break;
      case Layout::broadcast: kind = k == count - 1 && k > 0 ? Kind::scalar : Kind::plain; break;
      case Layout::strided: kind = Kind::every_other; break;
      case Layout::transposed: kind = input ? Kind::transposed : Kind::matrix; break;
    }
    const bool written = k == 0 && !oi.in_place;
    distinct.push_back(make_operand(kind, k == 0 ? oi.out : oi.in, n, written, op == Op::lt_f32, gen));
  }
  std::vector<Operand> ops = distinct;
  if (oi.in_place) ops.insert(ops.begin(), distinct[0]);
  return ops;
}

// The same operands over a copy of the written buffer (inputs shared: nothing writes them).
std::vector<Operand> copy_written(const std::vector<Operand>& ops, bool in_place, int64_t n) {
  std::vector<Operand> copy = ops;
  copy[0].buffer = ops[0].buffer.clone();
  copy[0].view = view_of(copy[0].buffer, copy[0].kind, n);
  if (in_place) copy[1] = copy[0];
  return copy;
}

// ---- the loops under test, and the CPU's ops ----

// What should have run: the vectorised loop, then the plain one for a tail of numel % kVec; or
// only the plain one.
template <int N, class Fn>
std::vector<KernelId> expected_kernels(bool vector, int64_t numel) {
  std::vector<KernelId> k;
  if (vector) k.push_back(kernel_id(cu::elementwise_vec_kernel<N, Fn>));
  if (!vector || numel % cu::kVec != 0) k.push_back(kernel_id(cu::elementwise_kernel<N, uint32_t, Fn>));
  return k;
}

// Runs the op's loop as elementwise.cu does; returns the kernels expected to run.
std::vector<KernelId> run_emulated(Op op, const std::vector<Operand>& o, bool vector) {
  const Tensor& out = o[0].view;
  const int64_t n = out.numel();
  switch (op) {
    case Op::add_f32:
      cu::binary_loop<float, float, float>(out, o[1].view, o[2].view, AddOf<float>{}, "add");
      return expected_kernels<3, AddF32>(vector, n);
    case Op::add_f32_int64_index: {  // the index type of more than 2^31 elements, on a small plan
      const auto plan = cu::make_elementwise_plan<3>(out.shape(), {&out, &o[1].view, &o[2].view}, "add");
      const auto blocks = static_cast<unsigned>(cu::grid_blocks(n, cu::kElementwiseThreads));
      cu::launch_kernel(cu::elementwise_kernel<3, int64_t, AddF32>, blocks, cu::kElementwiseThreads, nullptr, plan,
                        AddF32{});
      return {kernel_id(cu::elementwise_kernel<3, int64_t, AddF32>)};
    }
    case Op::add_bf16:
      cu::binary_loop<bf16, bf16, bf16>(out, o[1].view, o[2].view, AddOf<bf16>{}, "add");
      return expected_kernels<3, AddBf16>(vector, n);
    case Op::cast_f32_bf16:
      cu::unary_loop<bf16, float>(out, o[1].view, ConvertOf<bf16, float>{}, "copy");
      return expected_kernels<2, CastF32Bf16>(vector, n);
    case Op::lt_f32:
      cu::binary_loop<bool, float, float>(out, o[1].view, o[2].view, LessOf<float>{}, "compare");
      return expected_kernels<3, LtF32>(vector, n);
    case Op::fill_f64:
      cu::launch_elementwise(cu::make_elementwise_plan<1>(out.shape(), {&out}, "fill_"), nullptr, FillF64{kFillValue});
      return expected_kernels<1, FillF64>(vector, n);
    case Op::add_inplace_f32:
      cu::binary_loop<float, float, float>(out, out, o[2].view, AddOf<float>{}, "add_");
      return expected_kernels<3, AddF32>(vector, n);
  }
  return {};
}

void run_reference(Op op, std::vector<Operand>& o) {
  Tensor& out = o[0].view;
  switch (op) {
    case Op::add_f32:
    case Op::add_f32_int64_index:
    case Op::add_bf16: out.copy_(cohort::add(o[1].view, o[2].view)); break;
    case Op::cast_f32_bf16: out.copy_(o[1].view.to(DType::bf16)); break;
    case Op::lt_f32: out.copy_(cohort::lt(o[1].view, o[2].view)); break;
    case Op::fill_f64: out.fill_(kFillValue); break;
    case Op::add_inplace_f32: out += o[2].view; break;
  }
}

std::string kernel_names(const std::vector<KernelId>& ids, Op op) {
  std::string s;
  for (KernelId id : ids) {
    // Every kernel this test can launch, by the functor types above.
    const char* name = "another kernel";
    const auto is = [&](auto vec, auto plain32, auto plain64) {
      if (id == kernel_id(vec)) name = "vector";
      if (id == kernel_id(plain32)) name = "plain/u32";
      if (id == kernel_id(plain64)) name = "plain/i64";
    };
    switch (op) {
      case Op::add_f32:
      case Op::add_f32_int64_index:
      case Op::add_inplace_f32:
        is(cu::elementwise_vec_kernel<3, AddF32>, cu::elementwise_kernel<3, uint32_t, AddF32>,
           cu::elementwise_kernel<3, int64_t, AddF32>);
        break;
      case Op::add_bf16:
        is(cu::elementwise_vec_kernel<3, AddBf16>, cu::elementwise_kernel<3, uint32_t, AddBf16>,
           cu::elementwise_kernel<3, int64_t, AddBf16>);
        break;
      case Op::cast_f32_bf16:
        is(cu::elementwise_vec_kernel<2, CastF32Bf16>, cu::elementwise_kernel<2, uint32_t, CastF32Bf16>,
           cu::elementwise_kernel<2, int64_t, CastF32Bf16>);
        break;
      case Op::lt_f32:
        is(cu::elementwise_vec_kernel<3, LtF32>, cu::elementwise_kernel<3, uint32_t, LtF32>,
           cu::elementwise_kernel<3, int64_t, LtF32>);
        break;
      case Op::fill_f64:
        is(cu::elementwise_vec_kernel<1, FillF64>, cu::elementwise_kernel<1, uint32_t, FillF64>,
           cu::elementwise_kernel<1, int64_t, FillF64>);
        break;
    }
    s += s.empty() ? name : std::string(" + ") + name;
  }
  return s.empty() ? "none" : s;
}

// The first element where the buffers differ, as text ("" when they are equal).
std::string first_difference(const Tensor& got, const Tensor& want) {
  const size_t size = got.element_size();
  const auto* g = static_cast<const unsigned char*>(got.raw_data());
  const auto* w = static_cast<const unsigned char*>(want.raw_data());
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (std::memcmp(g + i * size, w + i * size, size) == 0) continue;
    uint64_t gb = 0, wb = 0;
    std::memcpy(&gb, g + i * size, size);
    std::memcpy(&wb, w + i * size, size);
    char text[160];
    std::snprintf(text, sizeof text, "buffer element %" PRId64 " of %" PRId64 ": bytes %#" PRIx64 ", CPU %#" PRIx64, i,
                  got.numel(), gb, wb);
    return text;
  }
  return "";
}

// Runs one case; prints a line if it fails.
bool run_case(Op op, Layout layout, int64_t n, uint32_t seed) {
  Generator gen(seed);
  std::vector<Operand> emulated = make_operands(op, layout, n, gen);
  std::vector<Operand> reference = copy_written(emulated, info(op).in_place, n);
  cohort::emulation::set_kernel_schedule(cohort::emulation::Schedule::random, seed);
  const bool vector =
      (layout == Layout::contiguous || layout == Layout::broadcast) && n >= cu::kVec && op != Op::add_f32_int64_index;
  const std::vector<KernelId> expected = run_emulated(op, emulated, vector);
  const std::vector<KernelId> ran = cohort::emulation::take_launched_kernels();
  const long errors = cohort::emulation::take_errors();
  run_reference(op, reference);
  const std::string diff = first_difference(emulated[0].buffer, reference[0].buffer);
  if (diff.empty() && ran == expected && errors == 0) return true;
  std::printf("FAIL %s, %s, n %" PRId64 ":", info(op).name, layout_name(layout), n);
  if (ran != expected) {
    std::printf(" ran %s, expected %s;", kernel_names(ran, op).c_str(), kernel_names(expected, op).c_str());
  }
  if (errors != 0) std::printf(" %ld emulation errors;", errors);
  if (!diff.empty()) std::printf(" %s", diff.c_str());
  std::printf("\n");
  return false;
}

// Lengths around multiples of kVec (a tail of 0 to 3 elements), one whose plain loop goes round
// the capped grid (1001 > 2 blocks of 256), and one whose vectorised loop does too (4099).
const int64_t kLengths[] = {1, 3, 4, 5, 7, 8, 1001, 4099};
const Op kOps[] = {Op::add_f32,       Op::add_f32_int64_index, Op::add_bf16,       Op::cast_f32_bf16,
                   Op::lt_f32,        Op::fill_f64,            Op::add_inplace_f32};
const Layout kLayouts[] = {Layout::contiguous, Layout::misaligned, Layout::broadcast, Layout::strided,
                           Layout::transposed};

}  // namespace

int main() {
  int failures = 0, cases = 0;
  uint32_t seed = 0;
  for (Op op : kOps) {
    const auto start = std::chrono::steady_clock::now();
    int op_cases = 0, op_failures = 0;
    for (Layout layout : kLayouts) {
      if (layout == Layout::broadcast && info(op).inputs == 0) continue;  // fill has no input
      for (int64_t n : kLengths) {
        if (layout == Layout::transposed && rows_of(n) == 0) continue;  // a prime n has no (r, c) with r, c > 1
        ++op_cases;
        op_failures += !run_case(op, layout, n, ++seed);
      }
    }
    cases += op_cases;
    failures += op_failures;
    std::printf("%s %-22s %d cases, %.2f s\n", op_failures == 0 ? "ok  " : "FAIL", info(op).name, op_cases,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    std::fflush(stdout);
  }
  if (failures != 0) {
    std::printf("%d of %d cases failed\n", failures, cases);
    return 1;
  }
  std::printf("all %d cases passed\n", cases);
  return 0;
}
