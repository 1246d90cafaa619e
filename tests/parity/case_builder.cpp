// CaseBuilder: random inputs drawn from the case's own generator, and attributes as JSON text.
#include <cmath>
#include <cstdio>

#include "parity_case.h"

namespace cohort::parity {

Tensor CaseBuilder::randn(const Shape& shape, DType dtype) {
  return cohort::randn(shape, dtype == DType::f64 ? DType::f64 : DType::f32, &gen_).to(dtype);
}

Tensor CaseBuilder::uniform(const Shape& shape, double lo, double hi, DType dtype) {
  return (cohort::rand(shape, DType::f64, &gen_) * (hi - lo) + lo).to(dtype);
}

Tensor CaseBuilder::randint(int64_t low, int64_t high, const Shape& shape, DType dtype) {
  return cohort::randint(low, high, shape, dtype, &gen_);
}

Tensor CaseBuilder::small_ints(const Shape& shape, DType dtype) {
  return cohort::randint(-2, 3, shape, DType::i64, &gen_).to(dtype);
}

Tensor CaseBuilder::bools(const Shape& shape) {
  return cohort::randint(0, 2, shape, DType::i64, &gen_).to(DType::boolean);
}

Tensor CaseBuilder::transposed(int64_t rows, int64_t cols, DType dtype) {
  return randn({cols, rows}, dtype).t();
}

Tensor CaseBuilder::input(const std::string& name, const Tensor& value, bool grad) {
  Tensor leaf = value.detach();
  if (grad && is_floating(leaf.dtype())) leaf.requires_grad_();
  inputs_.push_back({name, leaf});
  return leaf;
}

void CaseBuilder::parameters(const Module& m) {
  std::vector<std::string> names, keys;
  for (const auto& [name, p] : m.named_parameters()) {
    inputs_.push_back({name, p});
    names.push_back(name);
  }
  for (const auto& [key, t] : m.state_dict()) keys.push_back(key);
  attr("params", names);
  attr("state_dict_keys", keys);
}

void CaseBuilder::output(const std::string& name, const Tensor& t) {
  outputs_.push_back(t);
  output_names_.push_back(name);
}

namespace {
std::string quoted(const std::string& s) {
  std::string r = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') r += '\\';
    r += ch;
  }
  return r + "\"";
}

// A double as JSON: +-inf as the strings "inf"/"-inf" (JSON has no infinities).
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "\"inf\"" : "\"-inf\"";
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

template <class T, class F>
std::string list(const std::vector<T>& v, F to_json) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + to_json(v[i]);
  return s + "]";
}
}  // namespace

void CaseBuilder::attr(const std::string& key, int64_t v) { attrs_.emplace_back(key, std::to_string(v)); }

void CaseBuilder::attr(const std::string& key, double v) { attrs_.emplace_back(key, number(v)); }

void CaseBuilder::attr(const std::string& key, bool v) { attrs_.emplace_back(key, v ? "true" : "false"); }

void CaseBuilder::attr(const std::string& key, const std::string& v) { attrs_.emplace_back(key, quoted(v)); }

void CaseBuilder::attr(const std::string& key, const std::vector<int64_t>& v) {
  attrs_.emplace_back(key, list(v, [](int64_t x) { return std::to_string(x); }));
}

void CaseBuilder::attr(const std::string& key, const std::vector<double>& v) { attrs_.emplace_back(key, list(v, number)); }

void CaseBuilder::attr(const std::string& key, const std::vector<std::string>& v) {
  attrs_.emplace_back(key, list(v, quoted));
}

}  // namespace cohort::parity
