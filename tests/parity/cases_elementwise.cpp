// Parity cases: binary arithmetic (with broadcasting and type promotion), unary ops, comparisons,
// where/masked_fill/clamp; a few in bf16/f16, and some large enough to run multithreaded.
#include <cmath>
#include <tuple>

#include "parity_case.h"

namespace cohort::parity {

namespace {

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
using UnaryFn = Tensor (*)(const Tensor&);

ParityCase binary_case(const std::string& name, const std::string& op, BinaryFn fn, Shape sa, Shape sb,
                       DType dtype = DType::f32) {
  return {name, op, [=](CaseBuilder& c) {
            Tensor a = c.input("a", c.randn(sa, dtype));
            // Divisors stay away from 0.
            Tensor b = c.input("b", op == "div" ? c.uniform(sb, 0.5, 2.0, dtype) : c.randn(sb, dtype));
            c.output(fn(a, b));
          }};
}

ParityCase unary_case(const std::string& name, const std::string& op, UnaryFn fn, Shape shape,
                      DType dtype = DType::f32, bool positive = false) {
  return {name, op, [=](CaseBuilder& c) {
            Tensor x = c.input("x", positive ? c.uniform(shape, 0.1, 3.0, dtype) : c.randn(shape, dtype));
            c.output(fn(x));
          }};
}

Tensor gelu_none(const Tensor& x) { return gelu(x); }

}  // namespace

void add_elementwise_cases(CaseList& cases) {
  const DType f64 = DType::f64, bf16 = DType::bf16, f16 = DType::f16;

  // ---- binary arithmetic ----
  for (auto [op, fn] : {std::pair<const char*, BinaryFn>{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div},
                        {"maximum", maximum}, {"minimum", minimum}}) {
    const std::string o = op;
    cases.push_back(binary_case(o + "_same_shape", o, fn, {4, 5}, {4, 5}));
    cases.push_back(binary_case(o + "_broadcast_row", o, fn, {4, 5}, {5}));
    cases.push_back(binary_case(o + "_broadcast_both", o, fn, {3, 1, 5}, {4, 1}));
    cases.push_back(binary_case(o + "_scalar_tensor", o, fn, {}, {2, 3}));
    cases.push_back(binary_case(o + "_f64", o, fn, {3, 4}, {4}, f64));
  }
  cases.push_back(binary_case("add_large", "add", add, {512, 300}, {300}));
  cases.push_back(binary_case("mul_large", "mul", mul, {300, 1}, {1, 512}));
  cases.push_back({"add_noncontiguous", "add", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.transposed(4, 3));
                     Tensor b = c.input("b", c.randn({8, 3}).slice(0, 0, 8, 2));
                     c.output(add(a, b));
                   }});
  cases.push_back({"mul_expanded_input", "mul", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.randn({3, 1}).expand({3, 4}));
                     Tensor b = c.input("b", c.randn({3, 4}));
                     c.output(mul(a, b));
                   }});
  // Type promotion: f32 with f64, and integers.
  cases.push_back({"add_f32_f64", "add", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.randn({3, 4}));
                     Tensor b = c.input("b", c.randn({4}, DType::f64));
                     c.output(add(a, b));
                   }});
  cases.push_back({"mul_f32_i64", "mul", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.randn({3, 4}));
                     Tensor b = c.input("b", c.randint(-5, 5, {4}));
                     c.output(mul(a, b));
                   }});
  cases.push_back({"add_i32_i64", "add", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.randint(-100, 100, {3, 4}, DType::i32));
                     Tensor b = c.input("b", c.randint(-100, 100, {4}));
                     c.output(add(a, b));
                   }});
  cases.push_back({"div_i64", "div", [](CaseBuilder& c) {  // true division, as PyTorch's `/`
                     Tensor a = c.input("a", c.randint(-20, 20, {3, 4}));
                     Tensor b = c.input("b", c.randint(1, 7, {3, 4}));
                     c.output(div(a, b));
                   }});
  cases.push_back({"maximum_i32", "maximum", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.randint(-9, 9, {5}, DType::i32));
                     Tensor b = c.input("b", c.randint(-9, 9, {2, 5}, DType::i32));
                     c.output(maximum(a, b));
                   }});

  // ---- pow ----
  cases.push_back({"pow_tensor", "pow", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.uniform({3, 4}, 0.2, 2.0));
                     Tensor b = c.input("b", c.randn({4}));
                     c.output(pow(a, b));
                   }});
  cases.push_back({"pow_tensor_f64_broadcast", "pow", [](CaseBuilder& c) {
                     Tensor a = c.input("a", c.uniform({2, 3}, 0.2, 2.0, DType::f64));
                     Tensor b = c.input("b", c.randn({2, 1}, DType::f64));
                     c.output(pow(a, b));
                   }});
  for (auto [name, e] : {std::pair<const char*, double>{"pow_scalar_2", 2.0}, {"pow_scalar_3", 3.0},
                         {"pow_scalar_half", 0.5}, {"pow_scalar_minus_1_5", -1.5}}) {
    cases.push_back({name, "pow_scalar", [e = e](CaseBuilder& c) {
                       c.attr("exponent", e);
                       // Fractional exponents need positive bases; integer ones take any sign.
                       const bool integer = e == static_cast<double>(static_cast<int64_t>(e));
                       Tensor x = c.input("x", integer ? c.randn({3, 4}) : c.uniform({3, 4}, 0.2, 3.0));
                       c.output(pow(x, e));
                     }});
  }

  // ---- unary ----
  for (auto [op, fn] : {std::pair<const char*, UnaryFn>{"neg", neg}, {"abs", abs}, {"relu", relu},
                        {"gelu", gelu_none}, {"tanh", tanh}, {"sigmoid", sigmoid}, {"exp", exp}, {"log", log},
                        {"sqrt", sqrt}, {"square", square}}) {
    const std::string o = op;
    const bool positive = o == "log" || o == "sqrt";
    cases.push_back(unary_case(o, o, fn, {4, 6}, DType::f32, positive));
    cases.push_back(unary_case(o + "_f64", o, fn, {3, 5}, f64, positive));
    cases.push_back({o + "_noncontiguous", o, [fn, positive](CaseBuilder& c) {
                       Tensor x = c.input("x", positive ? c.uniform({6, 4}, 0.1, 3.0).t() : c.transposed(4, 6));
                       c.output(fn(x));
                     }});
  }
  cases.push_back({"gelu_tanh", "gelu_tanh", [](CaseBuilder& c) { c.output(gelu(c.input("x", c.randn({4, 6})), "tanh")); }});
  cases.push_back({"gelu_tanh_f64", "gelu_tanh", [](CaseBuilder& c) {
                     c.output(gelu(c.input("x", c.randn({4, 6}, DType::f64)), "tanh"));
                   }});
  cases.push_back(unary_case("tanh_large", "tanh", tanh, {256, 513}));
  cases.push_back(unary_case("exp_large", "exp", exp, {1000, 97}));
  cases.push_back({"abs_i64", "abs", [](CaseBuilder& c) { c.output(abs(c.input("x", c.randint(-9, 9, {7})))); }});

  // ---- 16-bit floats: computed in float, rounded once ----
  for (DType dt : {bf16, f16}) {
    const std::string s = dt == bf16 ? "_bf16" : "_f16";
    cases.push_back(binary_case("add" + s, "add", add, {4, 5}, {5}, dt));
    cases.push_back(binary_case("sub" + s, "sub", sub, {4, 5}, {4, 1}, dt));
    cases.push_back(binary_case("mul" + s, "mul", mul, {4, 5}, {4, 5}, dt));
    cases.push_back(binary_case("div" + s, "div", div, {4, 5}, {5}, dt));
    cases.push_back(unary_case("relu" + s, "relu", relu, {4, 6}, dt));
    // torch's CPU has no f16 exp/tanh: its f32 reference gradient would use the unrounded output
    // where cohort (like torch's own 16-bit kernels) uses the rounded one, so f16 compares forward only.
    const bool grad = dt == bf16;
    for (auto [op, fn] : {std::pair<const char*, UnaryFn>{"exp", exp}, {"tanh", tanh}}) {
      cases.push_back({op + s, op, [fn = fn, dt, grad](CaseBuilder& c) { c.output(fn(c.input("x", c.randn({4, 6}, dt), grad))); }});
    }
  }
  cases.push_back({"add_bf16_f16", "add", [](CaseBuilder& c) {  // promotes to f32
                     Tensor a = c.input("a", c.randn({3, 4}, DType::bf16));
                     Tensor b = c.input("b", c.randn({3, 4}, DType::f16));
                     c.output(add(a, b));
                   }});

  // ---- comparisons (bool results, no gradient) ----
  using CmpFn = Tensor (*)(const Tensor&, const Tensor&);
  using CmpScalarFn = Tensor (*)(const Tensor&, double);
  const std::vector<std::tuple<const char*, CmpFn, CmpScalarFn>> comparisons{
      {"eq", eq, eq}, {"ne", ne, ne}, {"lt", lt, lt}, {"le", le, le}, {"gt", gt, gt}, {"ge", ge, ge}};
  for (const auto& [op, fn, scalar_fn] : comparisons) {
    const std::string o = op;
    cases.push_back({o, o, [fn = fn](CaseBuilder& c) {
                       Tensor a = c.input("a", c.small_ints({4, 5}));
                       Tensor b = c.input("b", c.small_ints({5}));
                       c.output(fn(a, b));
                     }});
    cases.push_back({o + "_scalar", o + "_scalar", [scalar_fn = scalar_fn](CaseBuilder& c) {
                       c.attr("other", 1.0);
                       c.output(scalar_fn(c.input("a", c.small_ints({4, 5})), 1.0));
                     }});
    cases.push_back({o + "_mixed_dtypes", o, [fn = fn](CaseBuilder& c) {
                       Tensor a = c.input("a", c.small_ints({3, 4}, DType::i64));
                       Tensor b = c.input("b", c.small_ints({3, 1}, DType::f64));
                       c.output(fn(a, b));
                     }});
  }
  cases.push_back({"lt_scalar_fraction", "lt_scalar", [](CaseBuilder& c) {
                     c.attr("other", 0.5);
                     c.output(lt(c.input("a", c.small_ints({6}, DType::i32)), 0.5));
                   }});
  cases.push_back({"logical_not", "logical_not", [](CaseBuilder& c) { c.output(logical_not(c.input("x", c.bools({3, 4})))); }});

  // ---- where, masked_fill, clamp ----
  cases.push_back({"where", "where", [](CaseBuilder& c) {
                     Tensor cond = c.input("cond", c.bools({3, 4}));
                     Tensor a = c.input("a", c.randn({3, 4}));
                     Tensor b = c.input("b", c.randn({4}));
                     c.output(where(cond, a, b));
                   }});
  cases.push_back({"where_broadcast_cond", "where", [](CaseBuilder& c) {
                     Tensor cond = c.input("cond", c.bools({1, 4}));
                     Tensor a = c.input("a", c.randn({3, 1}, DType::f64));
                     Tensor b = c.input("b", c.randn({}, DType::f64));
                     c.output(where(cond, a, b));
                   }});
  cases.push_back({"where_i64", "where", [](CaseBuilder& c) {
                     Tensor cond = c.input("cond", c.bools({5}));
                     c.output(where(cond, c.input("a", c.randint(0, 9, {5})), c.input("b", c.randint(0, 9, {5}))));
                   }});
  cases.push_back({"masked_fill", "masked_fill", [](CaseBuilder& c) {
                     c.attr("value", -1.5);
                     Tensor x = c.input("x", c.randn({3, 4}));
                     c.output(masked_fill(x, c.input("mask", c.bools({1, 4})), -1.5));
                   }});
  cases.push_back({"masked_fill_neg_inf", "masked_fill", [](CaseBuilder& c) {  // attention masks
                     c.attr("value", -INFINITY);
                     Tensor x = c.input("x", c.randn({4, 4}));
                     c.output(masked_fill(x, c.input("mask", c.bools({4, 4})), -INFINITY));
                   }});
  for (auto [name, lo, hi] : {std::tuple<const char*, double, double>{"clamp", -0.5, 0.8},
                              {"clamp_min_only", -0.2, INFINITY}, {"clamp_max_only", -INFINITY, 0.3}}) {
    cases.push_back({name, "clamp", [lo = lo, hi = hi](CaseBuilder& c) {
                       c.attr("min", lo);
                       c.attr("max", hi);
                       c.output(clamp(c.input("x", c.randn({5, 6})), lo, hi));
                     }});
  }
}

}  // namespace cohort::parity
