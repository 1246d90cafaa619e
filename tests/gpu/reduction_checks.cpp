// Device parity of the reductions: sum and mean over any set of dims (keepdim, integers summing to
// i64), max / min over everything and along a dim with their first-occurrence indices (ties and
// NaN), argmax / argmin, and the gradients, in every dtype the CPU takes.
//
// The sizes walk every path of cuda/reduce.cu: rows of 1, 7, 33 and 1000 (a group of <= 32 lanes
// per row), 4097 (a block per row), 2^20 + 3 (a block per chunk of one row, then a pass over the
// chunks), a middle or leading dim (the column kernel, also with too few columns to fill the GPU,
// which splits the rows into chunks), and non-contiguous inputs. Sums accumulate in double on both
// devices, so tol_for(dtype) holds with room to spare.
#include <cmath>
#include <string>
#include <vector>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

// Small integers as floats: many ties, so "the first extreme" is tested, not just "an extreme".
Tensor with_ties(Context& ctx, const Shape& shape, DType dt) { return ctx.randint(-4, 5, shape).to(dt); }

// x with NaN at a few positions (every 97th element from `first`).
Tensor with_nans(const Tensor& x, int64_t first) {
  Tensor flat = x.detach().contiguous().reshape({-1}).clone();
  for (int64_t i = first; i < flat.numel(); i += 97) flat.narrow(0, i, 1).fill_(NAN);
  return flat.reshape(x.shape());
}

}  // namespace

GPU_CASE(reduction, sum_all) {
  for (DType dt : kFloats) {
    for (int64_t n : {1, 7, 33, 1000, 4097, (1 << 20) + 3}) {
      ctx.parity("sum({" + std::to_string(n) + "})", {ctx.randn({n}, dt)},
                 [](const Tensors& in) { return Tensors{sum(in[0])}; }, tol_for(dt));
    }
    ctx.parity("mean({4097})", {ctx.randn({4097}, dt)}, [](const Tensors& in) { return Tensors{mean(in[0])}; },
               tol_for(dt));
    ctx.parity("sum 0-dim", {ctx.randn({}, dt)}, [](const Tensors& in) { return Tensors{sum(in[0])}; }, tol_for(dt));
  }
  // Integers and bool sum to i64, exactly.
  ctx.parity("sum i64", {ctx.randint(-1000, 1000, {(1 << 20) + 3})},
             [](const Tensors& in) { return Tensors{sum(in[0])}; }, {});
  ctx.parity("sum i32 -> i64", {ctx.randint(-1000, 1000, {4097}, DType::i32)},
             [](const Tensors& in) { return Tensors{sum(in[0])}; }, {});
  ctx.parity("sum bool -> i64", {ctx.randint(0, 2, {4097}).to(DType::boolean)},
             [](const Tensors& in) { return Tensors{sum(in[0])}; }, {});
}

GPU_CASE(reduction, sum_dims) {
  for (DType dt : kFloats) {
    const Tol tol = tol_for(dt);
    auto sum_dims = [](std::vector<int64_t> dims, bool keepdim) {
      return [dims, keepdim](const Tensors& in) { return Tensors{sum(in[0], dims, keepdim)}; };
    };
    // Last dim: rows of 7, 33, 1000 (groups of lanes), 4097 (a block per row).
    ctx.parity("sum(-1) (64, 7)", {ctx.randn({64, 7}, dt)}, sum_dims({-1}, false), tol);
    ctx.parity("sum(-1) (1000, 33)", {ctx.randn({1000, 33}, dt)}, sum_dims({-1}, false), tol);
    ctx.parity("sum(1) (33, 1000) keepdim", {ctx.randn({33, 1000}, dt)}, sum_dims({1}, true), tol);
    ctx.parity("sum(-1) (37, 4097)", {ctx.randn({37, 4097}, dt)}, sum_dims({-1}, false), tol);
    ctx.parity("sum(-1) (3, 300000)", {ctx.randn({3, 300000}, dt)}, sum_dims({-1}, false), tol);
    // Leading and middle dims: the column kernel (bias gradient shape, narrow and wide inner).
    ctx.parity("sum(0) (4097, 33)", {ctx.randn({4097, 33}, dt)}, sum_dims({0}, false), tol);
    ctx.parity("sum(0) (1000, 1000)", {ctx.randn({1000, 1000}, dt)}, sum_dims({0}, false), tol);
    ctx.parity("sum(0) (100000, 3)", {ctx.randn({100000, 3}, dt)}, sum_dims({0}, false), tol);
    ctx.parity("sum(1) (4, 1000, 33) keepdim", {ctx.randn({4, 1000, 33}, dt)}, sum_dims({1}, true), tol);
    ctx.parity("sum(1, 2) (5, 6, 7, 8)", {ctx.randn({5, 6, 7, 8}, dt)}, sum_dims({1, 2}, false), tol);
    // Dims that are not one block (a permuted copy first) and non-contiguous inputs.
    ctx.parity("sum(0, 2) (5, 6, 7)", {ctx.randn({5, 6, 7}, dt)}, sum_dims({0, 2}, false), tol);
    ctx.parity("sum(-1) of a transpose", {ctx.randn({200, 33}, dt)},
               [](const Tensors& in) { return Tensors{sum(in[0].t(), {-1})}; }, tol);
    ctx.parity("sum(0) of a slice", {ctx.randn({300, 40}, dt)},
               [](const Tensors& in) { return Tensors{sum(in[0].slice(1, 3, 37, 2), {0})}; }, tol);
    ctx.parity("mean(0, -1) (7, 33, 9) keepdim", {ctx.randn({7, 33, 9}, dt)},
               [](const Tensors& in) { return Tensors{mean(in[0], {0, -1}, true)}; }, tol);
    ctx.parity("mean(1) (64, 4097)", {ctx.randn({64, 4097}, dt)},
               [](const Tensors& in) { return Tensors{mean(in[0], {1})}; }, tol);
    // An empty reduced dim: sum 0, mean NaN (both devices).
    ctx.parity("sum over an empty dim", {ctx.randn({4, 0, 3}, dt)}, sum_dims({1}, false), tol);
    ctx.parity("mean over an empty dim", {ctx.randn({4, 0}, dt)},
               [](const Tensors& in) { return Tensors{mean(in[0], {1})}; }, tol);
  }
  ctx.parity("sum(0) i64 (100000, 3)", {ctx.randint(-9, 9, {100000, 3})},
             [](const Tensors& in) { return Tensors{sum(in[0], {0})}; }, {});
  ctx.parity("sum(1) i32 (33, 4097)", {ctx.randint(-9, 9, {33, 4097}, DType::i32)},
             [](const Tensors& in) { return Tensors{sum(in[0], {1})}; }, {});
}

GPU_CASE(reduction, max_min_all) {
  for (DType dt : kFloats) {
    for (int64_t n : {1, 7, 33, 1000, 4097, (1 << 20) + 3}) {
      const std::string size = "{" + std::to_string(n) + "}";
      // Ties everywhere: the gradient lands on the first extreme, on both devices.
      ctx.parity("max " + size, {with_ties(ctx, {n}, dt)}, [](const Tensors& in) { return Tensors{max(in[0])}; },
                 tol_for(dt));
      ctx.parity("min " + size, {with_ties(ctx, {n}, dt)}, [](const Tensors& in) { return Tensors{min(in[0])}; },
                 tol_for(dt));
    }
    // NaN is the extreme of both, and the first NaN takes the gradient.
    const Tensor x = with_nans(ctx.randn({(1 << 20) + 3}, dt), 5000);
    ctx.parity("max with NaN", {x}, [](const Tensors& in) { return Tensors{max(in[0])}; }, tol_for(dt));
    ctx.parity("min with NaN", {x}, [](const Tensors& in) { return Tensors{min(in[0])}; }, tol_for(dt));
    ctx.parity("max of a transpose", {ctx.randn({300, 77}, dt)},
               [](const Tensors& in) { return Tensors{max(in[0].t())}; }, tol_for(dt));
  }
  ctx.parity("max i64", {ctx.randint(-50, 50, {(1 << 20) + 3})}, [](const Tensors& in) { return Tensors{max(in[0])}; },
             {});
  ctx.parity("min i32", {ctx.randint(-50, 50, {4097}, DType::i32)},
             [](const Tensors& in) { return Tensors{min(in[0])}; }, {});
  ctx.parity("max bool", {ctx.randint(0, 2, {1000}).to(DType::boolean)},
             [](const Tensors& in) { return Tensors{max(in[0])}; }, {});
}

GPU_CASE(reduction, max_min_dim) {
  for (DType dt : kFloats) {
    const Tol tol = tol_for(dt);
    auto along = [](int64_t dim, bool keepdim, bool is_max) {
      return [=](const Tensors& in) {
        const ValuesIndices r = is_max ? max(in[0], dim, keepdim) : min(in[0], dim, keepdim);
        return Tensors{r.values, r.indices};
      };
    };
    for (bool is_max : {true, false}) {
      const std::string op = is_max ? "max" : "min";
      ctx.parity(op + "(-1) (64, 7)", {with_ties(ctx, {64, 7}, dt)}, along(-1, false, is_max), tol);
      ctx.parity(op + "(1) (1000, 33) keepdim", {with_ties(ctx, {1000, 33}, dt)}, along(1, true, is_max), tol);
      ctx.parity(op + "(-1) (37, 4097)", {with_ties(ctx, {37, 4097}, dt)}, along(-1, false, is_max), tol);
      ctx.parity(op + "(-1) (2, 300000)", {with_ties(ctx, {2, 300000}, dt)}, along(-1, false, is_max), tol);
      ctx.parity(op + "(0) (4097, 33)", {with_ties(ctx, {4097, 33}, dt)}, along(0, false, is_max), tol);
      ctx.parity(op + "(0) (100000, 3)", {with_ties(ctx, {100000, 3}, dt)}, along(0, false, is_max), tol);
      ctx.parity(op + "(1) (4, 1000, 33)", {with_ties(ctx, {4, 1000, 33}, dt)}, along(1, false, is_max), tol);
      ctx.parity(op + "(1) of a transpose", {with_ties(ctx, {100, 33}, dt)},
                 [is_max](const Tensors& in) {
                   const ValuesIndices r = is_max ? max(in[0].t(), 1) : min(in[0].t(), 1);
                   return Tensors{r.values, r.indices};
                 },
                 tol);
      ctx.parity(op + "(1) with NaN", {with_nans(ctx.randn({50, 1000}, dt), 3)}, along(1, false, is_max), tol);
      ctx.parity(op + "(0) with NaN", {with_nans(ctx.randn({1000, 50}, dt), 11)}, along(0, false, is_max), tol);
    }
    ctx.parity("max of a 0-dim along 0", {ctx.randn({}, dt)}, along(0, false, true), tol);
    ctx.parity("argmax / argmin", {with_ties(ctx, {33, 1000}, dt)}, [](const Tensors& in) {
      return Tensors{argmax(in[0], 1), argmin(in[0], 0), argmax(in[0], -1, true)};
    }, tol, false);
  }
  for (DType dt : {DType::i64, DType::i32, DType::boolean}) {
    const Tensor x = dt == DType::boolean ? ctx.randint(0, 2, {33, 1000}).to(dt) : ctx.randint(-5, 5, {33, 1000}, dt);
    ctx.parity(std::string("max/min/argmax ") + dtype_name(dt), {x}, [](const Tensors& in) {
      const ValuesIndices a = max(in[0], 1), b = min(in[0], 0);
      return Tensors{a.values, a.indices, b.values, b.indices, argmax(in[0], 0)};
    }, {}, false);
  }
}

}  // namespace cohort::gpu_check
