// Shapes and strides, and the arithmetic on them (broadcasting, dim wrapping, formatting).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cohort {

using Shape = std::vector<int64_t>;    // sizes, outermost first
using Strides = std::vector<int64_t>;  // in elements, not bytes

int64_t numel_of(const Shape& shape);
Strides contiguous_strides(const Shape& shape);

// "(4, 3)"; "()" for a scalar.
std::string shape_str(const Shape& shape);

// Wraps a possibly negative dim into [0, ndim); throws IndexError naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// The shape two shapes broadcast to (numpy rules); throws ShapeError naming `op` otherwise.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace cohort
