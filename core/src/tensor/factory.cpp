// Factories: filled, ranged, from data, random. On a CUDA device, full() fills there, arange and
// from-data tensors are built on the CPU and copied over, and random draws run on the device with
// the CPU's numbers (cuda/random.cu).
#include "cohort/core/ops/factory.h"

#include <cmath>

#include "../cuda/index-ops-impl.h"
#include "../ops/cast-impl.h"
#include "cohort/core/parallel_for.h"

namespace cohort {

Tensor full(const Shape& shape, double value, TensorOptions options) {
  const bool requires_grad = options.requires_grad;
  options.requires_grad = false;
  Tensor t = Tensor::empty(shape, options);
  t.fill_(value);
  if (requires_grad) t.requires_grad_();
  return t;
}

Tensor zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }
Tensor scalar_tensor(double value, TensorOptions options) { return full({}, value, options); }

namespace {
TensorOptions like(const Tensor& t) { return TensorOptions(t.dtype()).with_device(t.device()); }
}  // namespace

Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), like(t)); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), like(t)); }
Tensor empty_like(const Tensor& t) { return Tensor::empty(t.shape(), like(t)); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, like(t)); }

Tensor arange(double end, TensorOptions options) { return arange(0.0, end, 1.0, options); }

Tensor arange(double start, double end, double step, TensorOptions options) {
  COHORT_CHECK(step != 0, ValueError, "arange: step must not be zero");
  COHORT_CHECK((end - start) / step >= 0, ValueError, "arange: the range [", start, ", ", end,
               ") is empty or goes the wrong way for step ", step);
  const int64_t n = static_cast<int64_t>(std::ceil((end - start) / step));
  const bool requires_grad = options.requires_grad;
  options.requires_grad = false;
  if (!options.device.is_cpu()) {
    check_device_available(options.device, "arange");
    Tensor t = arange(start, end, step, TensorOptions(options.dtype)).to(options.device);
    if (requires_grad) t.requires_grad_();
    return t;
  }
  Tensor t = Tensor::empty({n}, options);
  dispatch(t.dtype(), "arange", [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data_ptr<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = detail::cast<T>(start + static_cast<double>(i) * step);
  });
  if (requires_grad) t.requires_grad_();
  return t;
}

template <class T>
Tensor from_vector(const std::vector<T>& values, Shape shape, bool requires_grad) {
  if (shape.empty()) shape = {static_cast<int64_t>(values.size())};
  COHORT_CHECK(numel_of(shape) == static_cast<int64_t>(values.size()), ShapeError, "from_vector: ",
               values.size(), " values cannot fill shape ", shape_str(shape), " (", numel_of(shape), " elements)");
  Tensor t = Tensor::empty(shape, dtype_of<T>());
  T* p = t.data_ptr<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  if (requires_grad) t.requires_grad_();
  return t;
}

template Tensor from_vector<float>(const std::vector<float>&, Shape, bool);
template Tensor from_vector<double>(const std::vector<double>&, Shape, bool);
template Tensor from_vector<int32_t>(const std::vector<int32_t>&, Shape, bool);
template Tensor from_vector<int64_t>(const std::vector<int64_t>&, Shape, bool);
template Tensor from_vector<BFloat16>(const std::vector<BFloat16>&, Shape, bool);
template Tensor from_vector<Half>(const std::vector<Half>&, Shape, bool);

Tensor tensor(std::initializer_list<double> values, Shape shape, TensorOptions options) {
  const bool requires_grad = options.requires_grad;
  Tensor t = from_vector(std::vector<double>(values), std::move(shape)).to(options.dtype);
  if (!options.device.is_cpu()) t = t.to(options.device);
  if (requires_grad) t.requires_grad_();
  return t;
}

namespace {

// Fills t (contiguous) with values derived from counters [first, first + numel/per_counter):
// counter c produces elements 4c .. 4c+3, so the result does not depend on how threads split it.
// On a CUDA device the kernel computes `kind` as `fill` does here, bit for bit (cuda/random.cu).
template <class Fill>
Tensor random_fill(const Shape& shape, TensorOptions options, Generator* gen, const char* op, const Fill& fill,
                   detail::cuda::RandomKind kind, int64_t low = 0, uint64_t range = 1) {
  const bool requires_grad = options.requires_grad;
  options.requires_grad = false;
  Tensor t = Tensor::empty(shape, options);
  Generator& g = gen != nullptr ? *gen : default_generator();
  const int64_t n = t.numel();
  const int64_t counters = (n + 3) / 4;
  const uint64_t first = g.advance(static_cast<uint64_t>(counters));
  const uint64_t seed = g.seed();
  if (t.is_cuda()) {
    detail::cuda::random_fill(t, kind, seed, first, low, range);
    if (requires_grad) t.requires_grad_();
    return t;
  }
  dispatch(t.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data_ptr<T>();
    parallel_for(0, counters, 4096, [&](int64_t b, int64_t e) {
      for (int64_t c = b; c < e; ++c) {
        uint32_t r[4];
        detail::philox(seed, first + static_cast<uint64_t>(c), r);
        double v[4];
        fill(r, v);
        for (int k = 0; k < 4 && 4 * c + k < n; ++k) p[4 * c + k] = detail::cast<T>(v[k]);
      }
    });
  });
  if (requires_grad) t.requires_grad_();
  return t;
}

}  // namespace

Tensor rand(const Shape& shape, TensorOptions options, Generator* gen) {
  COHORT_CHECK(is_floating(options.dtype), DTypeError, "rand: expected a floating dtype, got ", dtype_name(options.dtype));
  return random_fill(shape, options, gen, "rand", [](const uint32_t r[4], double v[4]) {
    for (int k = 0; k < 4; ++k) v[k] = detail::uniform_double(r[k]);
  }, detail::cuda::RandomKind::uniform);
}

Tensor randn(const Shape& shape, TensorOptions options, Generator* gen) {
  COHORT_CHECK(is_floating(options.dtype), DTypeError, "randn: expected a floating dtype, got ", dtype_name(options.dtype));
  // Box-Muller: two uniforms give two independent normals.
  return random_fill(shape, options, gen, "randn", [](const uint32_t r[4], double v[4]) {
    constexpr double kTwoPi = 6.283185307179586;
    for (int k = 0; k < 4; k += 2) {
      const double u1 = (static_cast<double>(r[k]) + 1.0) * (1.0 / 4294967297.0);  // (0, 1)
      const double u2 = detail::uniform_double(r[k + 1]);
      const double radius = std::sqrt(-2.0 * std::log(u1));
      v[k] = radius * std::cos(kTwoPi * u2);
      v[k + 1] = radius * std::sin(kTwoPi * u2);
    }
  }, detail::cuda::RandomKind::normal);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, TensorOptions options, Generator* gen) {
  COHORT_CHECK(high > low, ValueError, "randint: expected low < high, got low ", low, " and high ", high);
  const uint64_t range = static_cast<uint64_t>(high - low);
  return random_fill(shape, options, gen, "randint", [low, range](const uint32_t r[4], double v[4]) {
    for (int k = 0; k < 4; ++k) {
      const uint64_t x = (static_cast<uint64_t>(r[k]) << 32) | r[(k + 1) % 4];
      v[k] = static_cast<double>(low + static_cast<int64_t>(x % range));
    }
  }, detail::cuda::RandomKind::integer, low, range);
}

}  // namespace cohort
