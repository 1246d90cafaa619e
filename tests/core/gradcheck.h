// Finite-difference gradient checks in f64 (the ggml test-backend-ops / torch.autograd.gradcheck way).
//
//   Tensor x = gradcheck_input({3, 4}, gen);           // f64 leaf that requires grad
//   EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return tanh(in[0]); }, {x}));
//
// gradcheck(fn, inputs) reduces fn's floating outputs to the scalar L = sum_k sum(out_k * w_k) with
// fixed random weights w_k (so a gradient that is wrong in one element, or transposed, cannot hide
// behind a plain sum), computes dL/dx with autograd, and compares it element by element with the
// central difference (L(x + eps) - L(x - eps)) / (2 eps) for every element of every input that
// requires grad. An element passes when |analytic - numeric| <= atol + rtol * |numeric|; on failure
// the result names the worst element (input, index, both values).
//
// fn may return one Tensor or a std::vector<Tensor> (split, max with indices); outputs that are not
// floating (indices, masks) are ignored. fn must be deterministic: an op that draws random numbers
// builds its Generator from a fixed seed inside fn, so every evaluation sees the same draw.
// Inputs that require grad must be f64 leaves; they may be non-contiguous views, but not expanded
// (an element perturbed in memory must be one logical element).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <iomanip>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "cohort/core/core.h"

namespace cohort::test {

// An f64 leaf that requires grad, standard normal (shift/scale it before requires_grad_ for ops with
// a restricted domain, e.g. positive_input below).
inline Tensor gradcheck_input(const Shape& shape, Generator& gen) {
  return randn(shape, DType::f64, &gen).requires_grad_();
}

// Uniform on [lo, hi): for log, sqrt, pow's base and divisors.
inline Tensor positive_input(const Shape& shape, Generator& gen, double lo = 0.5, double hi = 2.0) {
  Tensor u = rand(shape, DType::f64, &gen);
  NoGradGuard no_grad;
  return (u * (hi - lo) + lo).detach().requires_grad_();
}

// A (rows, cols) f64 leaf that requires grad and is the transpose of a contiguous (cols, rows)
// tensor: for checking that an op reads strided inputs right.
inline Tensor transposed_input(int64_t rows, int64_t cols, Generator& gen) {
  return randn({cols, rows}, DType::f64, &gen).t().requires_grad_();
}

// An i64 index tensor (1-D unless `shape` is given).
inline Tensor index_tensor(const std::vector<int64_t>& values, Shape shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
  return from_vector<int64_t>(values, shape);
}

namespace detail {

// Memory offset (in elements, from data_ptr) of the element with row-major position `linear`.
inline int64_t element_offset(const Tensor& t, int64_t linear) {
  int64_t offset = 0;
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    offset += (linear % t.size(d)) * t.stride(d);
    linear /= t.size(d);
  }
  return offset;
}

inline std::string index_str(const Shape& shape, int64_t linear) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = linear % shape[d];
    linear /= shape[d];
  }
  return shape_str(idx);
}

inline std::vector<Tensor> as_outputs(Tensor t) { return {std::move(t)}; }
inline std::vector<Tensor> as_outputs(std::vector<Tensor> ts) { return ts; }

inline bool overlaps_itself(const Tensor& t) {
  for (int64_t d = 0; d < t.dim(); ++d) {
    if (t.size(d) > 1 && t.stride(d) == 0) return true;
  }
  return false;
}

// sum_k sum(outs[k] * weights[k]) in double, read straight from memory (no autograd, no ops under test).
inline double weighted_sum(const std::vector<Tensor>& outs, const std::vector<Tensor>& weights) {
  double total = 0.0;
  size_t w = 0;
  for (const Tensor& out : outs) {
    if (!is_floating(out.dtype())) continue;
    Tensor o = out.detach().contiguous().to(DType::f64);
    const double* po = o.data_ptr<double>();
    const double* pw = weights[w++].data_ptr<double>();
    for (int64_t i = 0; i < o.numel(); ++i) total += po[i] * pw[i];
  }
  return total;
}

}  // namespace detail

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-4;
  uint64_t seed = 20240611;  // for the random output weights
};

template <class Fn>
::testing::AssertionResult gradcheck(const Fn& fn, const std::vector<Tensor>& inputs, GradcheckOptions options) {
  auto evaluate = [&]() { return detail::as_outputs(fn(inputs)); };

  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i];  // a handle: set_grad below changes the caller's tensor
    if (!x.defined() || !x.requires_grad()) continue;
    if (x.dtype() != DType::f64 || !x.is_leaf() || detail::overlaps_itself(x)) {
      return ::testing::AssertionFailure() << "gradcheck: input " << i << " must be an f64 leaf that does "
                                           << "not overlap itself, got " << dtype_name(x.dtype()) << " "
                                           << x.shape_str() << (x.is_leaf() ? "" : " (not a leaf)");
    }
    x.set_grad(Tensor());
  }

  // Analytic: backward from every floating output with its own random weights.
  Generator gen(options.seed);
  std::vector<Tensor> outs = evaluate();
  std::vector<Tensor> roots, weights;
  for (size_t k = 0; k < outs.size(); ++k) {
    if (!is_floating(outs[k].dtype())) continue;
    if (!outs[k].requires_grad()) {
      return ::testing::AssertionFailure() << "gradcheck: output " << k << " " << outs[k].shape_str()
                                           << " does not require grad (the op recorded no history)";
    }
    roots.push_back(outs[k]);
    weights.push_back(randn(outs[k].shape(), DType::f64, &gen));
  }
  if (roots.empty()) return ::testing::AssertionFailure() << "gradcheck: fn returned no floating output";
  std::vector<Tensor> grad_roots;
  for (size_t k = 0; k < roots.size(); ++k) grad_roots.push_back(weights[k].to(roots[k].dtype()));
  backward(roots, grad_roots);

  // Numeric: central differences, one element at a time, compared as we go; keep the worst.
  struct Worst {
    double ratio = -1, analytic = 0, numeric = 0;
    size_t input = 0;
    int64_t element = 0;
  } worst;
  int64_t checked = 0;
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor g = x.grad();
    if (g.defined() && (g.shape() != x.shape() || g.dtype() != x.dtype())) {
      return ::testing::AssertionFailure() << "gradcheck: the gradient of input " << i << " has shape "
                                           << g.shape_str() << " and dtype " << dtype_name(g.dtype())
                                           << ", expected " << x.shape_str() << " and f64";
    }
    g = g.defined() ? g.contiguous() : zeros(x.shape(), DType::f64);
    const double* pg = g.data_ptr<double>();
    double* px = x.data_ptr<double>();
    for (int64_t e = 0; e < x.numel(); ++e) {
      double& v = px[detail::element_offset(x, e)];
      const double saved = v;
      v = saved + options.eps;
      const double plus = detail::weighted_sum(evaluate(), weights);
      v = saved - options.eps;
      const double minus = detail::weighted_sum(evaluate(), weights);
      v = saved;
      const double numeric = (plus - minus) / (2 * options.eps);
      const double ratio = std::abs(pg[e] - numeric) / (options.atol + options.rtol * std::abs(numeric));
      if (!(ratio <= worst.ratio)) worst = {std::isnan(ratio) ? INFINITY : ratio, pg[e], numeric, i, e};
      ++checked;
    }
    x.set_grad(Tensor());
  }
  if (checked == 0) return ::testing::AssertionFailure() << "gradcheck: no input requires grad";
  if (worst.ratio <= 1.0) return ::testing::AssertionSuccess();
  std::ostringstream m;
  m << std::setprecision(10) << "gradcheck: input " << worst.input << " element "
    << detail::index_str(inputs[worst.input].shape(), worst.element) << ": analytic " << worst.analytic
    << " vs numeric " << worst.numeric << std::setprecision(3) << " (|diff| "
    << std::abs(worst.analytic - worst.numeric) << " > atol " << options.atol << " + rtol " << options.rtol
    << " * |numeric|; " << checked << " elements checked, eps " << options.eps << ")";
  return ::testing::AssertionFailure() << m.str();
}

template <class Fn>
::testing::AssertionResult gradcheck(const Fn& fn, const std::vector<Tensor>& inputs, double eps = 1e-6,
                                     double atol = 1e-5, double rtol = 1e-4) {
  GradcheckOptions options;
  options.eps = eps;
  options.atol = atol;
  options.rtol = rtol;
  return gradcheck(fn, inputs, options);
}

}  // namespace cohort::test
