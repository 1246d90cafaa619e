// Device parity of the elementwise ops: unary, binary with broadcasting and type promotion,
// comparisons, selection, copies between dtypes and layouts, in every floating dtype.
#include <string>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {
const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};
}

GPU_CASE(elementwise, unary) {
  using Fn = Tensor (*)(const Tensor&);
  const std::pair<const char*, Fn> ops[] = {
      {"abs", [](const Tensor& x) { return abs(x); }},       {"relu", [](const Tensor& x) { return relu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},     {"gelu_tanh", [](const Tensor& x) { return gelu(x, "tanh"); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},     {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"exp", [](const Tensor& x) { return exp(x); }},       {"square", [](const Tensor& x) { return square(x); }},
      {"neg", [](const Tensor& x) { return neg(x); }},       {"pow3", [](const Tensor& x) { return pow(x, 3.0); }},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); }},
  };
  for (DType dt : kFloats) {
    for (const auto& [name, fn] : ops) {
      ctx.parity(name, {ctx.randn({37, 129}, dt)}, [fn = fn](const Tensors& in) { return Tensors{fn(in[0])}; },
                 tol_for(dt));
    }
    // Positive domains.
    ctx.parity("log", {ctx.rand({1000}, 0.1, 4.0, dt)}, [](const Tensors& in) { return Tensors{log(in[0])}; },
               tol_for(dt));
    ctx.parity("sqrt", {ctx.rand({1000}, 0.1, 4.0, dt)}, [](const Tensors& in) { return Tensors{sqrt(in[0])}; },
               tol_for(dt));
    ctx.parity("pow1.5", {ctx.rand({1000}, 0.1, 4.0, dt)},
               [](const Tensors& in) { return Tensors{pow(in[0], 1.5)}; }, tol_for(dt));
  }
  // A strided (transposed) input and a non-contiguous output path.
  ctx.parity("gelu transposed", {ctx.randn({64, 48})}, [](const Tensors& in) { return Tensors{gelu(in[0].t())}; },
             tol_for(DType::f32));
  // Integers.
  ctx.parity("abs i64", {ctx.randint(-50, 50, {300})}, [](const Tensors& in) { return Tensors{abs(in[0])}; }, {});
  ctx.parity("square i32", {ctx.randint(-50, 50, {300}, DType::i32)},
             [](const Tensors& in) { return Tensors{square(in[0])}; }, {});
  ctx.parity("pow i64", {ctx.randint(-5, 5, {300})}, [](const Tensors& in) { return Tensors{pow(in[0], 3.0)}; }, {});
  ctx.parity("clamp i64", {ctx.randint(-50, 50, {300})},
             [](const Tensors& in) { return Tensors{clamp(in[0], -10, 20)}; }, {});
}

GPU_CASE(elementwise, binary_broadcast) {
  for (DType dt : kFloats) {
    const Tensor a = ctx.randn({8, 1, 33}, dt), b = ctx.randn({5, 33}, dt);
    ctx.parity("add", {a, b}, [](const Tensors& in) { return Tensors{add(in[0], in[1])}; }, tol_for(dt));
    ctx.parity("sub", {a, b}, [](const Tensors& in) { return Tensors{sub(in[0], in[1])}; }, tol_for(dt));
    ctx.parity("mul", {a, b}, [](const Tensors& in) { return Tensors{mul(in[0], in[1])}; }, tol_for(dt));
    ctx.parity("div", {a, ctx.rand({5, 33}, 0.5, 2.0, dt)}, [](const Tensors& in) { return Tensors{div(in[0], in[1])}; },
               tol_for(dt));
    ctx.parity("maximum", {a, b}, [](const Tensors& in) { return Tensors{maximum(in[0], in[1])}; }, tol_for(dt));
    ctx.parity("minimum", {a, b}, [](const Tensors& in) { return Tensors{minimum(in[0], in[1])}; }, tol_for(dt));
    ctx.parity("pow", {ctx.rand({8, 1, 33}, 0.5, 2.0, dt), ctx.rand({5, 33}, -1.0, 2.0, dt)},
               [](const Tensors& in) { return Tensors{pow(in[0], in[1])}; }, tol_for(dt));
    ctx.parity("scalar ops", {a}, [](const Tensors& in) { return Tensors{(in[0] * 2.5 + 1.0) / 3.0 - 0.25}; },
               tol_for(dt));
  }
  // Mixed dtypes promote (f32 with bf16, i64 with f32).
  ctx.parity("promote f32+bf16", {ctx.randn({40}), ctx.randn({40}, DType::bf16)},
             [](const Tensors& in) { return Tensors{add(in[0], in[1])}; }, tol_for(DType::f32));
  ctx.parity("promote i64*f32", {ctx.randint(-5, 5, {40}), ctx.randn({40})},
             [](const Tensors& in) { return Tensors{mul(in[0], in[1])}; }, tol_for(DType::f32));
  ctx.parity("int div -> f32", {ctx.randint(-50, 50, {40}), ctx.randint(1, 9, {40})},
             [](const Tensors& in) { return Tensors{div(in[0], in[1])}; }, tol_for(DType::f32));
  ctx.parity("add i32", {ctx.randint(-50, 50, {7, 40}, DType::i32), ctx.randint(-50, 50, {40}, DType::i32)},
             [](const Tensors& in) { return Tensors{add(in[0], in[1])}; }, {});
}

GPU_CASE(elementwise, compare_select) {
  for (DType dt : {DType::f32, DType::bf16, DType::i64}) {
    const Tensor a = is_floating(dt) ? ctx.randn({6, 50}, dt) : ctx.randint(-3, 3, {6, 50}, dt);
    const Tensor b = is_floating(dt) ? ctx.randn({50}, dt) : ctx.randint(-3, 3, {50}, dt);
    ctx.parity("eq/ne/lt/le/gt/ge", {a, b}, [](const Tensors& in) {
      return Tensors{eq(in[0], in[1]), ne(in[0], in[1]), lt(in[0], in[1]),
                     le(in[0], in[1]), gt(in[0], in[1]), ge(in[0], in[1])};
    }, {}, false);
    ctx.parity("logical_not", {a}, [](const Tensors& in) { return Tensors{logical_not(in[0])}; }, {}, false);
  }
  for (DType dt : kFloats) {
    const Tensor x = ctx.randn({6, 50}, dt), y = ctx.randn({6, 50}, dt), c = ctx.randn({50});
    ctx.parity("where", {c, x, y}, [](const Tensors& in) { return Tensors{where(gt(in[0], 0.0), in[1], in[2])}; },
               tol_for(dt));
    ctx.parity("masked_fill", {c, x}, [](const Tensors& in) { return Tensors{masked_fill(in[1], lt(in[0], 0.0), -7.5)}; },
               tol_for(dt));
  }
}

GPU_CASE(elementwise, copies) {
  const DType all[] = {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64, DType::boolean};
  const Tensor src = ctx.randn({17, 31}) * 40.0;
  for (DType from : all) {
    for (DType to : all) {
      const Tensor x = src.to(from);
      const Tensor cpu = x.to(to);
      const Tensor gpu = x.to(Device::cuda(0)).to(to);
      ctx.expect_close(std::string("to(") + dtype_name(from) + " -> " + dtype_name(to) + ")", cpu, gpu, {});
    }
  }
  // Layouts: transpose, slice, expand, contiguous, clone, copy_ with broadcast and conversion.
  const Tensor x = ctx.randn({20, 30, 4});
  const Tensor xg = x.to(Device::cuda(0));
  ctx.expect_close("permute().contiguous()", x.permute({2, 0, 1}).contiguous(), xg.permute({2, 0, 1}).contiguous(), {});
  ctx.expect_close("slice step 3", x.slice(1, 1, 29, 3).contiguous(), xg.slice(1, 1, 29, 3).contiguous(), {});
  Tensor dc = zeros({20, 30, 4}, DType::bf16), dg = zeros({20, 30, 4}, TensorOptions(DType::bf16).with_device(Device::cuda(0)));
  dc.copy_(x.select(0, 3));
  dg.copy_(xg.select(0, 3));
  ctx.expect_close("copy_ broadcast f32 -> bf16", dc, dg, {});
  // Strided outputs: copy_ into a transposed view, add_ into a slice with a step.
  Tensor tc = zeros({30, 20}), tg = zeros({30, 20}, TensorOptions().with_device(Device::cuda(0)));
  Tensor tcv = tc.t(), tgv = tg.t();
  tcv.copy_(x.select(2, 1));
  tgv.copy_(xg.select(2, 1));
  ctx.expect_close("copy_ into a transposed view", tc, tg, {});
  Tensor sc = tc.slice(1, 2, 20, 3), sg = tg.slice(1, 2, 20, 3);
  add_(sc, x.select(2, 0).t().slice(1, 2, 20, 3), 0.5);
  add_(sg, xg.select(2, 0).t().slice(1, 2, 20, 3), 0.5);
  ctx.expect_close("add_ into a slice with step 3", tc, tg, tol_for(DType::f32));
  Tensor from_host = zeros({20, 30, 4}, TensorOptions().with_device(Device::cuda(0)));
  from_host.copy_(x);  // across devices
  ctx.expect_close("copy_ host -> device", x, from_host, {});
  ctx.expect_close("fill_", full({5, 5}, 3.25), full({5, 5}, 3.25, TensorOptions().with_device(Device::cuda(0))), {});
  // Pinned memory and an asynchronous copy.
  const Tensor pinned = x.pin_memory();
  ctx.expect_true("pin_memory is pinned", pinned.is_pinned());
  const Tensor async = pinned.to(Device::cuda(0), /*non_blocking=*/true);
  ctx.expect_close("pinned -> device non_blocking", x, async, {});
  // item() and printing read back from the device.
  const double host = x.select(0, 3).select(0, 5).select(0, 2).item();
  const double device = xg.select(0, 3).select(0, 5).select(0, 2).item();
  ctx.expect_true("item()", host == device, std::to_string(host) + " vs " + std::to_string(device));
  ctx.expect_true("str()", x.slice(0, 0, 2).str().substr(0, 40) == xg.slice(0, 0, 2).str().substr(0, 40),
                  xg.slice(0, 0, 2).str().substr(0, 60));
}

// Past 2^31 elements the elementwise loop indexes in 64 bits: a flat fill and a strided copy must
// reach the last elements (2 bool tensors of 2^31 + 6 bytes on the device, tails checked).
// The vectorised flat loop (loops-impl.cuh: kVec = 4 elements per thread from aligned contiguous
// operands) and its plain tail: lengths around multiples of 4, operands starting one element into
// their storage (misaligned: the plain loop), a broadcast scalar, in place, mixed element sizes
// (bf16 -> f32 -> bool, f64), each against the CPU.
GPU_CASE(elementwise, vectorized) {
  for (const int64_t n : {1, 3, 4, 5, 7, 8, 1001, 4099}) {
    const std::string len = " n=" + std::to_string(n);
    for (DType dt : kFloats) {
      ctx.parity("mul add" + len, {ctx.randn({n}, dt), ctx.randn({n}, dt)},
                 [](const Tensors& in) { return Tensors{in[0] * in[1] + 0.5}; }, tol_for(dt));
    }
    ctx.parity("misaligned operands" + len, {ctx.randn({n + 1}), ctx.randn({n + 1})}, [n](const Tensors& in) {
      return Tensors{in[0].slice(0, 1, n + 1) - in[1].slice(0, 0, n)};
    }, tol_for(DType::f32));
    ctx.parity("0-dim operand" + len, {ctx.randn({n}, DType::bf16), ctx.randn({}, DType::bf16)},
               [](const Tensors& in) { return Tensors{in[0] * in[1]}; }, tol_for(DType::bf16));
    ctx.parity("bf16 -> f32 -> compare" + len, {ctx.randn({n}, DType::bf16), ctx.randn({n})}, [](const Tensors& in) {
      return Tensors{in[0].to(DType::f32) + in[1], gt(in[0].to(DType::f32), in[1])};
    }, tol_for(DType::f32));
    Tensor c = ctx.randn({n}), d = ctx.randn({n});
    Tensor cg = c.to(Device::cuda(0)), dg = d.to(Device::cuda(0));
    add_(c, d, 2.0);
    add_(cg, dg, 2.0);
    ctx.expect_close("in place add_" + len, c, cg, tol_for(DType::f32));
    Tensor f = ctx.randn({n}, DType::f64);
    Tensor fg = f.to(Device::cuda(0));
    f.fill_(1.25);
    fg.fill_(1.25);
    ctx.expect_close("fill_ f64" + len, f, fg, {});
  }
}

GPU_CASE(elementwise, past_int32) {
  const int64_t half = (int64_t{1} << 30) + 3;
  Tensor big = zeros({2, half}, TensorOptions(DType::boolean).with_device(Device::cuda(0)));  // flat
  Tensor row = big.select(0, 1);
  row.fill_(1.0);
  ctx.expect_close("fill_ 2^31+6 elements, tail", tensor({0, 0, 0, 1, 1, 1}, {2, 3}, DType::boolean),
                   big.slice(1, half - 3, half), {});
  const Tensor tr = big.t().contiguous();  // strided: (half, 2) from strides (1, half)
  ctx.expect_close("transposed copy 2^31+6 elements, tail", tensor({0, 1, 0, 1, 0, 1}, {3, 2}, DType::boolean),
                   tr.slice(0, half - 3, half), {});
}

}  // namespace cohort::gpu_check
