// PyTorch-like printing: tensor([[ 1.0000, -2.5000], ...], dtype=f32), summarised past 1000 elements.
#include <cmath>
#include <iomanip>
#include <sstream>

#include "cohort/core/autograd.h"
#include "cohort/core/tensor.h"

namespace cohort {

namespace {

constexpr int64_t kSummariseAbove = 1000;
constexpr int64_t kEdgeItems = 3;

std::string format_value(double v, bool floating) {
  std::ostringstream out;
  if (!floating) {
    out << static_cast<int64_t>(v);
  } else if (std::isnan(v) || std::isinf(v)) {
    out << v;
  } else if (v != 0 && (std::fabs(v) >= 1e8 || std::fabs(v) < 1e-4)) {
    out << std::scientific << std::setprecision(4) << v;
  } else {
    out << std::fixed << std::setprecision(4) << v;
  }
  return out.str();
}

void print_rec(std::ostream& out, const Tensor& t, const double* data, const Shape& shape, const Strides& st,
               int64_t dim, int64_t offset, bool summarise, bool floating, bool is_bool, int indent) {
  if (dim == static_cast<int64_t>(shape.size())) {
    const double v = data[offset];
    out << (is_bool ? (v != 0 ? "True" : "False") : format_value(v, floating));
    return;
  }
  out << "[";
  const int64_t n = shape[dim];
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && n > 2 * kEdgeItems && i == kEdgeItems) {
      out << "...";
      i = n - kEdgeItems - 1;
      out << (dim + 1 == static_cast<int64_t>(shape.size()) ? ", " : ",\n" + std::string(indent + 1, ' '));
      continue;
    }
    print_rec(out, t, data, shape, st, dim + 1, offset + i * st[dim], summarise, floating, is_bool, indent + 1);
    if (i + 1 < n) {
      if (dim + 1 == static_cast<int64_t>(shape.size())) {
        out << ", ";
      } else {
        out << "," << std::string(shape.size() - dim - 1, '\n') << std::string(indent + 1, ' ');
      }
    }
  }
  out << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream out;
  out << "tensor(";
  const Tensor values = detach().to(Device::cpu()).to(DType::f64).contiguous();
  print_rec(out, values, values.data_ptr<double>(), shape(), values.strides(), 0, 0, numel() > kSummariseAbove,
            is_floating(dtype()), dtype() == DType::boolean, 7);
  out << ", dtype=" << dtype_name(dtype());
  if (!device().is_cpu()) out << ", device=" << device().str();
  if (grad_fn()) {
    out << ", grad_fn=" << grad_fn()->name();
  } else if (requires_grad()) {
    out << ", requires_grad=true";
  }
  out << ")";
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

}  // namespace cohort
