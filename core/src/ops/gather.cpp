// index_select and gather (reads at integer positions) and their reverses index_add and
// scatter_add (sums into integer positions), each with its gradient.
//
// Each public op checks its arguments and readies the index (i64, contiguous, on the input's
// device), then calls its _impl, which computes and records the gradient; a gradient calls the
// _impl of the reverse op directly, with an index already known to be in range. On CUDA, a CPU
// index is range-checked on the host and copied over, and an index already on the GPU is checked
// by the kernel that reads it (cuda/index-ops-impl.h says why and what that costs).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#include "../cuda/index-ops-impl.h"
#include "cohort/core/autograd.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/indexing.h"
#include "cohort/core/parallel_for.h"

namespace cohort {

namespace {

// The index as contiguous i64 (i32 is converted), or a DTypeError naming the op.
Tensor index_i64(const Tensor& index, const char* op) {
  COHORT_CHECK(index.defined(), ValueError, op, ": the index tensor is undefined");
  COHORT_CHECK(index.dtype() == DType::i64 || index.dtype() == DType::i32, DTypeError, op,
               ": index must be i64 or i32, got ", dtype_name(index.dtype()));
  return index.detach().to(DType::i64).contiguous();
}

// Throws IndexError for the first entry of a 1-D index outside [0, size).
void check_range(const Tensor& index, int64_t size, int64_t dim, const Tensor& x, const char* op) {
  const int64_t* p = index.data_ptr<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i) {
    COHORT_CHECK(p[i] >= 0 && p[i] < size, IndexError, op, ": index ", p[i], " is out of range for dim ", dim,
                 " of size ", size, " (input shape ", x.shape_str(), ")");
  }
}

// After a kernel found an index out of range: the CPU's IndexError for the first bad entry.
[[noreturn]] void report_range(const Tensor& index, int64_t size, int64_t dim, const Tensor& x, const char* op) {
  check_range(index.to(Device::cpu()), size, dim, x, op);
  COHORT_THROW(IndexError, op, ": internal: the device reported an index out of range for dim ", dim,
               " of size ", size, " but the host found none");
}

// Readies `index` (i64, contiguous) for an op on x and returns whether its range is still
// unchecked. For a CUDA x, a CPU index is checked here, on the host, and copied to x's device,
// while an index on x's device is left for the kernel to check. For a CPU x the index must be on
// the CPU; the CPU loops check it.
bool ready_index(const Tensor& x, Tensor& index, int64_t size, int64_t dim, const char* op) {
  if (!x.is_cuda()) {
    COHORT_CHECK(index.device().is_cpu(), DeviceError, op, ": the input is on cpu but the index is on ",
                 index.device().str(), "; move the index with .to(Device::cpu()) first");
    return false;
  }
  if (index.device().is_cpu()) {
    check_range(index, size, dim, x, op);
    index = index.to(x.device());
    return false;
  }
  COHORT_CHECK(index.device() == x.device(), DeviceError, op, ": the input is on ", x.device().str(),
               " but the index is on ", index.device().str(), "; move the index with .to(", x.device().str(),
               ") first");
  return true;
}

void check_source_device(const Tensor& x, const Tensor& source, const char* op) {
  COHORT_CHECK(source.device() == x.device(), DeviceError, op, ": the input is on ", x.device().str(),
               " but the source is on ", source.device().str(), "; move the source with .to(", x.device().str(),
               ") first");
}

// Calls f(U{}) with an unsigned type of the element size: copies need the size, not the dtype.
template <class F>
void dispatch_bytes(size_t elem, const F& f) {
  switch (elem) {
    case 1:
      f(uint8_t{});
      break;
    case 2:
      f(uint16_t{});
      break;
    case 4:
      f(uint32_t{});
      break;
    default:
      f(uint64_t{});
      break;
  }
}

int64_t prod(const Shape& s, int64_t from, int64_t to) {
  int64_t n = 1;
  for (int64_t d = from; d < to; ++d) n *= s[d];
  return n;
}

// gather/scatter_add need index.size(d) <= x.size(d) for every d != dim.
void check_fits(const Tensor& index, const Tensor& x, int64_t dim, const char* op, const char* what) {
  COHORT_CHECK(index.dim() == x.dim(), ShapeError, op, ": index of shape ", index.shape_str(),
               " must have as many dims as ", what, " of shape ", x.shape_str());
  for (int64_t d = 0; d < x.dim(); ++d) {
    COHORT_CHECK(d == dim || index.size(d) <= x.size(d), ShapeError, op, ": index of shape ", index.shape_str(),
                 " is larger than ", what, " of shape ", x.shape_str(), " in dim ", d);
  }
}

// The ops past their argument checks. `index` is i64, contiguous, on x's device; `unchecked` says
// whether a CUDA kernel must still check its range (the CPU loops of gather and scatter_add always
// do; index_select and index_add are checked before their _impl on the CPU).
Tensor index_select_impl(const Tensor& x, int64_t dim, const Tensor& index, bool unchecked);
Tensor index_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, bool unchecked);
Tensor gather_impl(const Tensor& x, int64_t dim, const Tensor& index, bool unchecked);
Tensor scatter_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, bool unchecked);

Tensor index_select_impl(const Tensor& x, int64_t dim, const Tensor& index, bool unchecked) {
  const Tensor src = x.detach().contiguous();
  const int64_t K = index.numel(), S = x.size(dim);
  const int64_t outer = prod(x.shape(), 0, dim), inner = prod(x.shape(), dim + 1, x.dim());
  Shape out_shape = x.shape();
  out_shape[dim] = K;
  Tensor out = Tensor::empty(out_shape, TensorOptions(x.dtype()).with_device(x.device()));
  if (out.is_cuda()) {
    if (!detail::cuda::index_select(out, src, index, outer, S, inner, unchecked)) {
      report_range(index, S, dim, x, "index_select");
    }
  } else {
    const int64_t* ip = index.data_ptr<int64_t>();
    // Unit (o, k) copies the inner-long row x[o, index[k], :] to out[o, k, :].
    dispatch_bytes(x.element_size(), [&](auto tag) {
      using U = decltype(tag);
      const U* xp = static_cast<const U*>(src.raw_data());
      U* op = static_cast<U*>(out.raw_data());
      parallel_for(0, outer * K, std::max<int64_t>(1, 32768 / std::max<int64_t>(inner, 1)), [&](int64_t b, int64_t e) {
        for (int64_t u = b; u < e; ++u) {
          const int64_t o = u / K, k = u % K;
          const U* s = xp + (o * S + ip[k]) * inner;
          U* d = op + u * inner;
          for (int64_t j = 0; j < inner; ++j) d[j] = s[j];
        }
      });
    });
  }
  const Shape x_shape = x.shape();
  const TensorOptions x_options = TensorOptions(x.dtype()).with_device(x.device());
  return record(out, "index_select", {x}, [index, dim, x_shape, x_options](const Tensor& g, const GradNeeds&) {
    return grads(index_add_impl(zeros(x_shape, x_options), dim, index, g, false));
  });
}

Tensor index_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, bool unchecked) {
  const int64_t K = index.numel(), S = x.size(dim);
  Tensor out = x.detach().clone();                  // contiguous (outer, S, inner)
  const Tensor src = source.detach().contiguous();  // (outer, K, inner)
  const int64_t outer = prod(x.shape(), 0, dim), inner = prod(x.shape(), dim + 1, x.dim());
  if (out.is_cuda()) {
    if (!detail::cuda::index_add(out, src, index, outer, S, inner, unchecked)) {
      report_range(index, S, dim, x, "index_add");
    }
  } else {
    const int64_t* ip = index.data_ptr<int64_t>();
    // Repeated indices make several k add into the same output row, so threads never split k: a
    // unit is a block of up to kBlock inner positions of one outer row, walked for k = 0, 1, ...
    // in order. No two units touch the same element, and every element sums in the same order on
    // any thread count.
    constexpr int64_t kBlock = 256;
    const int64_t blocks = (inner + kBlock - 1) / kBlock;
    dispatch_numeric(x.dtype(), "index_add", [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      const T* sp = src.data_ptr<T>();
      T* op = out.data_ptr<T>();
      const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(K * std::min(inner, kBlock), 1));
      parallel_for(0, outer * blocks, grain, [&](int64_t b, int64_t e) {
        for (int64_t u = b; u < e; ++u) {
          const int64_t o = u / blocks, i0 = (u % blocks) * kBlock, n = std::min(kBlock, inner - i0);
          for (int64_t k = 0; k < K; ++k) {
            T* d = op + (o * S + ip[k]) * inner + i0;
            const T* s = sp + (o * K + k) * inner + i0;
            for (int64_t j = 0; j < n; ++j) d[j] = T(static_cast<A>(d[j]) + static_cast<A>(s[j]));
          }
        }
      });
    });
  }
  return record(out, "index_add", {x, source}, [index, dim](const Tensor& g, const GradNeeds& needs) {
    return grads(needs[0] ? g : Tensor(), needs[1] ? index_select_impl(g, dim, index, false) : Tensor());
  });
}

Tensor gather_impl(const Tensor& x, int64_t dim, const Tensor& index, bool unchecked) {
  Tensor out = Tensor::empty(index.shape(), TensorOptions(x.dtype()).with_device(x.device()));
  const int64_t nd = x.dim(), size = nd > 0 ? x.size(dim) : 1;
  if (out.is_cuda()) {
    // A 0-dim gather is a 1-D one of one element.
    const bool scalar = nd == 0;
    const bool ok = detail::cuda::gather(scalar ? out.view({1}) : out, scalar ? x.detach().view({1}) : x,
                                         scalar ? index.view({1}) : index, dim, unchecked);
    if (!ok) report_range(index, size, dim, x, "gather");
  } else {
    const int64_t L = nd > 0 ? index.size(nd - 1) : 1, rows = L > 0 ? index.numel() / L : 0;
    const Strides xs = nd > 0 ? x.strides() : Strides{0};
    const Shape is = index.shape();
    const int64_t* ip = index.data_ptr<int64_t>();
    std::atomic<bool> bad{false};
    // Row r is index[r, :] over the last dim. Its offset in x comes from r's coordinates in every
    // dim except `dim` (that coordinate is the index value itself); x is read through its strides.
    dispatch_bytes(x.element_size(), [&](auto tag) {
      using U = decltype(tag);
      const U* xp = static_cast<const U*>(x.raw_data());
      U* op = static_cast<U*>(out.raw_data());
      parallel_for(0, rows, std::max<int64_t>(1, 32768 / std::max<int64_t>(L, 1)), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          int64_t base = 0;
          for (int64_t d = nd - 2, rem = r; d >= 0; --d) {
            if (d != dim) base += (rem % is[d]) * xs[d];
            rem /= is[d];
          }
          const int64_t last_stride = dim == nd - 1 || nd == 0 ? 0 : xs[nd - 1];
          for (int64_t j = 0; j < L; ++j) {
            const int64_t t = ip[r * L + j];
            if (t < 0 || t >= size) {
              bad.store(true, std::memory_order_relaxed);
              continue;
            }
            op[r * L + j] = xp[base + j * last_stride + t * xs[dim]];
          }
        }
      });
    });
    if (bad.load()) check_range(index, size, dim, x, "gather");  // names the first bad entry
  }
  const Shape x_shape = x.shape();
  const TensorOptions x_options = TensorOptions(x.dtype()).with_device(x.device());
  return record(out, "gather", {x}, [index, dim, x_shape, x_options](const Tensor& g, const GradNeeds&) {
    return grads(scatter_add_impl(zeros(x_shape, x_options), dim, index, g, false));
  });
}

Tensor scatter_add_impl(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& source, bool unchecked) {
  Tensor out = x.detach().clone();  // contiguous
  const int64_t nd = x.dim(), size = nd > 0 ? x.size(dim) : 1;
  if (out.is_cuda()) {
    const bool scalar = nd == 0;  // as gather_impl
    const bool ok = detail::cuda::scatter_add(scalar ? out.view({1}) : out,
                                              scalar ? source.detach().view({1}) : source.detach(),
                                              scalar ? index.view({1}) : index, dim, unchecked);
    if (!ok) report_range(index, size, dim, x, "scatter_add");
  } else {
    const Shape is = index.shape();
    const Strides os = nd > 0 ? out.strides() : Strides{0};
    const Strides ss = nd > 0 ? source.strides() : Strides{0};
    const int64_t L = nd > 0 ? is[dim] : 1;
    const int64_t outer = prod(is, 0, dim), inner = nd > 0 ? prod(is, dim + 1, nd) : 1;
    const int64_t* ip = index.data_ptr<int64_t>();
    std::atomic<bool> bad{false};
    // Entries that differ in any coordinate other than `dim` land on different outputs, so a unit
    // is (o, a block of kLanes consecutive inner positions), walked along dim l = 0, 1, ... in
    // order: units never collide and each output sums in the same order on any thread count. Lanes
    // sit side by side in memory, so the walk along dim reads whole cache lines.
    constexpr int64_t kLanes = 16;
    const int64_t blocks = (inner + kLanes - 1) / kLanes;
    dispatch_numeric(x.dtype(), "scatter_add", [&](auto tag) {
      using T = decltype(tag);
      using A = acc_t<T>;
      const T* sp = source.data_ptr<T>();
      T* op = out.data_ptr<T>();
      const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(L * kLanes, 1));
      parallel_for(0, outer * blocks, grain, [&](int64_t b, int64_t e) {
        int64_t out_base[kLanes], src_base[kLanes];
        for (int64_t u = b; u < e; ++u) {
          const int64_t o = u / blocks, i0 = (u % blocks) * kLanes, n = std::min(kLanes, inner - i0);
          for (int64_t k = 0; k < n; ++k) {
            // Coordinates of (o, l = 0, i0 + k) in the index's shape, dims after `dim` from the
            // inner position and dims before it from o.
            int64_t ob = 0, sb = 0;
            for (int64_t d = nd - 1, rem = i0 + k; d > dim; --d) {
              ob += (rem % is[d]) * os[d];
              sb += (rem % is[d]) * ss[d];
              rem /= is[d];
            }
            for (int64_t d = dim - 1, rem = o; d >= 0; --d) {
              ob += (rem % is[d]) * os[d];
              sb += (rem % is[d]) * ss[d];
              rem /= is[d];
            }
            out_base[k] = ob;
            src_base[k] = sb;
          }
          for (int64_t l = 0; l < L; ++l) {
            const int64_t* idx = ip + (o * L + l) * inner + i0;
            for (int64_t k = 0; k < n; ++k) {
              const int64_t t = idx[k];
              if (t < 0 || t >= size) {
                bad.store(true, std::memory_order_relaxed);
                continue;
              }
              T& dst = op[out_base[k] + t * os[dim]];
              dst = T(static_cast<A>(dst) + static_cast<A>(sp[src_base[k] + l * ss[dim]]));
            }
          }
        }
      });
    });
    if (bad.load()) check_range(index, size, dim, x, "scatter_add");
  }
  const Shape src_shape = source.shape();
  return record(out, "scatter_add", {x, source}, [index, dim, src_shape](const Tensor& g, const GradNeeds& needs) {
    Tensor gs;
    if (needs[1]) {
      gs = gather_impl(g, dim, index, false);
      if (gs.shape() != src_shape) {
        // Source entries the index does not reach get no gradient.
        Tensor full_gs = zeros(src_shape, TensorOptions(gs.dtype()).with_device(gs.device()));
        Tensor region = full_gs;
        for (int64_t d = 0; d < gs.dim(); ++d) region = region.narrow(d, 0, gs.size(d));
        region.copy_(gs);
        gs = full_gs;
      }
    }
    return grads(needs[0] ? g : Tensor(), gs);
  });
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim_in, const Tensor& index_in) {
  COHORT_CHECK(x.defined(), ValueError, "index_select: the input tensor is undefined");
  COHORT_CHECK(x.dim() > 0, ShapeError, "index_select: the input must have at least one dim, got shape ()");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "index_select");
  Tensor index = index_i64(index_in, "index_select");
  COHORT_CHECK(index_in.dim() <= 1, ShapeError, "index_select: index must be 1-D, got shape ", index_in.shape_str());
  const bool unchecked = ready_index(x, index, x.size(dim), dim, "index_select");
  if (!x.is_cuda()) check_range(index, x.size(dim), dim, x, "index_select");
  return index_select_impl(x, dim, index, unchecked);
}

Tensor index_add(const Tensor& x, int64_t dim_in, const Tensor& index_in, const Tensor& source) {
  COHORT_CHECK(x.defined() && source.defined(), ValueError, "index_add: the input or source tensor is undefined");
  COHORT_CHECK(x.dim() > 0, ShapeError, "index_add: the input must have at least one dim, got shape ()");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "index_add");
  Tensor index = index_i64(index_in, "index_add");
  COHORT_CHECK(index_in.dim() <= 1, ShapeError, "index_add: index must be 1-D, got shape ", index_in.shape_str());
  COHORT_CHECK(source.dtype() == x.dtype(), DTypeError, "index_add: source has dtype ", dtype_name(source.dtype()),
               " but the input has ", dtype_name(x.dtype()));
  const int64_t K = index.numel(), S = x.size(dim);
  Shape expected = x.shape();
  expected[dim] = K;
  COHORT_CHECK(source.shape() == expected, ShapeError, "index_add: an input of shape ", x.shape_str(),
               " and an index of ", K, " entries along dim ", dim, " need a source of shape ", shape_str(expected),
               ", got ", source.shape_str());
  check_source_device(x, source, "index_add");
  const bool unchecked = ready_index(x, index, S, dim, "index_add");
  if (!x.is_cuda()) check_range(index, S, dim, x, "index_add");
  return index_add_impl(x, dim, index, source, unchecked);
}

Tensor gather(const Tensor& x, int64_t dim_in, const Tensor& index_in) {
  COHORT_CHECK(x.defined(), ValueError, "gather: the input tensor is undefined");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "gather");
  Tensor index = index_i64(index_in, "gather");
  check_fits(index, x, dim, "gather", "the input");
  const bool unchecked = ready_index(x, index, x.dim() > 0 ? x.size(dim) : 1, dim, "gather");
  return gather_impl(x, dim, index, unchecked);
}

Tensor scatter_add(const Tensor& x, int64_t dim_in, const Tensor& index_in, const Tensor& source) {
  COHORT_CHECK(x.defined() && source.defined(), ValueError, "scatter_add: the input or source tensor is undefined");
  const int64_t dim = wrap_dim(dim_in, x.dim(), "scatter_add");
  Tensor index = index_i64(index_in, "scatter_add");
  COHORT_CHECK(source.dtype() == x.dtype(), DTypeError, "scatter_add: source has dtype ", dtype_name(source.dtype()),
               " but the input has ", dtype_name(x.dtype()));
  check_fits(index, x, dim, "scatter_add", "the input");
  COHORT_CHECK(index.dim() == source.dim(), ShapeError, "scatter_add: index of shape ", index.shape_str(),
               " must have as many dims as the source of shape ", source.shape_str());
  for (int64_t d = 0; d < index.dim(); ++d) {
    COHORT_CHECK(index.size(d) <= source.size(d), ShapeError, "scatter_add: index of shape ", index.shape_str(),
                 " is larger than the source of shape ", source.shape_str(), " in dim ", d);
  }
  check_source_device(x, source, "scatter_add");
  const bool unchecked = ready_index(x, index, x.dim() > 0 ? x.size(dim) : 1, dim, "scatter_add");
  return scatter_add_impl(x, dim, index, source, unchecked);
}

}  // namespace cohort
