// Device parity of random numbers and factories: rand, randint and dropout on cuda:0 draw exactly
// the CPU's numbers from identically seeded generators (and advance them alike); randn matches to
// the last bits (CUDA's double log/sin/cos are within 1-2 ulp where glibc's are correctly rounded,
// see cuda/random.cu), checked at the dtype's tolerance plus a count of elements that differ at all.
// Then arange, tensor() and full() with a CUDA device.
#include <string>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};
const Device kGpu = Device::cuda(0);

TensorOptions on_gpu(DType dt) { return TensorOptions(dt).with_device(kGpu); }

// Sizes around the four-per-counter grouping and the grid-stride loop.
const Shape kShapes[] = {{1}, {3}, {4}, {5}, {7, 13}, {1001}, {(1 << 16) + 3}};

// The number of elements where a and b (same shape) differ at all.
int64_t count_different(const Tensor& a, const Tensor& b) {
  const Tensor x = a.detach().to(Device::cpu()).to(DType::f64).contiguous();
  const Tensor y = b.detach().to(Device::cpu()).to(DType::f64).contiguous();
  const double* p = x.data_ptr<double>();
  const double* q = y.data_ptr<double>();
  int64_t n = 0;
  for (int64_t i = 0; i < x.numel(); ++i) n += p[i] != q[i];
  return n;
}

// Draws with `draw` on the CPU and on the GPU from two generators seeded alike, after a first
// draw that moves both offsets; compares values and the generators' offsets afterwards.
// An exact comparison unless a tolerance is given.
void same_draws(Context& ctx, const std::string& what, const std::function<Tensor(const Device&, Generator*)>& draw,
                Tol tol = {}) {
  Generator gc(1234), gg(1234);
  draw(Device::cpu(), &gc);  // a first draw, so the compared one starts at an offset > 0
  draw(kGpu, &gg);
  const Tensor c = draw(Device::cpu(), &gc);
  const Tensor g = draw(kGpu, &gg);
  ctx.expect_close(what, c, g, tol);
  ctx.expect_true(what + ": generator offsets agree", gc.offset() == gg.offset(),
                  std::to_string(gc.offset()) + " vs " + std::to_string(gg.offset()));
}

}  // namespace

GPU_CASE(random, rand_exact) {
  for (DType dt : kFloats) {
    for (const Shape& s : kShapes) {
      same_draws(ctx, std::string("rand ") + dtype_name(dt) + " " + shape_str(s), [&](const Device& d, Generator* gen) {
        return rand(s, TensorOptions(dt).with_device(d), gen);
      });
    }
  }
  // The default generator: manual_seed gives a CUDA program the CPU program's numbers.
  manual_seed(77);
  const Tensor c = rand({333});
  manual_seed(77);
  const Tensor g = rand({333}, on_gpu(DType::f32));
  ctx.expect_close("rand, default generator", c, g, {});
}

GPU_CASE(random, randint_exact) {
  const std::pair<int64_t, int64_t> ranges[] = {{0, 2}, {-5, 7}, {0, 50257}, {-(int64_t{1} << 40), int64_t{1} << 40}};
  for (const auto& [lo, hi] : ranges) {
    for (const Shape& s : kShapes) {
      same_draws(ctx, "randint [" + std::to_string(lo) + ", " + std::to_string(hi) + ") " + shape_str(s),
                 [&, lo = lo, hi = hi](const Device& d, Generator* gen) {
                   return randint(lo, hi, s, TensorOptions(DType::i64).with_device(d), gen);
                 });
    }
  }
  for (DType dt : {DType::i32, DType::f32, DType::bf16}) {
    same_draws(ctx, std::string("randint ") + dtype_name(dt), [&](const Device& d, Generator* gen) {
      return randint(-100, 100, {1001}, TensorOptions(dt).with_device(d), gen);
    });
  }
}

GPU_CASE(random, randn) {
  for (DType dt : kFloats) {
    for (const Shape& s : kShapes) {
      same_draws(ctx, std::string("randn ") + dtype_name(dt) + " " + shape_str(s), [&](const Device& d, Generator* gen) {
        return randn(s, TensorOptions(dt).with_device(d), gen);
      }, tol_for(dt));
    }
  }
  // In f32, the last-bit differences of double libm almost never survive the rounding to float.
  Generator gc(9), gg(9);
  const Tensor c = randn({1 << 20}, DType::f32, &gc);
  const Tensor g = randn({1 << 20}, on_gpu(DType::f32), &gg);
  const int64_t differ = count_different(c, g);
  ctx.expect_true("randn f32: elements not bit-identical <= 1 in 10^4", differ * 10000 <= c.numel(),
                  std::to_string(differ) + " of " + std::to_string(c.numel()) + " differ");
  const Tensor c64 = randn({1 << 16}, DType::f64, &gc);
  const Tensor g64 = randn({1 << 16}, on_gpu(DType::f64), &gg);
  ctx.expect_close("randn f64 (1e-14 relative)", c64, g64, {1e-14, 1e-14});
}

GPU_CASE(random, dropout) {
  for (DType dt : kFloats) {
    for (double p : {0.1, 0.5}) {
      for (const Shape& s : {Shape{5}, Shape{37, 129}}) {
        const std::string what = "dropout p=" + std::to_string(p).substr(0, 3) + " " + shape_str(s);
        // The same generator state on both sides: the fn builds its own generator each call. The
        // mask (out != 0) is compared exactly, values and gradients at the dtype's tolerance.
        ctx.parity(what, {ctx.randn(s, dt)}, [p](const Tensors& in) {
          Generator gen(4321);
          gen.advance(17);
          const Tensor out = dropout(in[0], p, true, &gen);
          return Tensors{out, ne(out, 0.0)};
        }, tol_for(dt));
      }
    }
  }
  // Values bit for bit in f32 and f64: large (grid-stride loop, vector accesses) and an input at
  // an odd offset (scalar accesses).
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor big = ctx.randn({(1 << 20) + 5}, dt);
    ctx.parity(std::string("dropout 2^20+5 exact ") + dtype_name(dt), {big}, [](const Tensors& in) {
      Generator gen(5);
      return Tensors{dropout(in[0], 0.2, true, &gen)};
    }, Tol{}, false);
    ctx.parity(std::string("dropout offset view exact ") + dtype_name(dt), {big}, [](const Tensors& in) {
      Generator gen(6);
      return Tensors{dropout(in[0].narrow(0, 1, 1001), 0.3, true, &gen)};
    }, Tol{}, false);
  }
  // The default generator, as nn::Dropout uses it.
  manual_seed(99);
  const Tensor x = ctx.randn({64, 65});
  const Tensor c = dropout(x, 0.25);
  manual_seed(99);
  const Tensor g = dropout(x.to(kGpu), 0.25);
  ctx.expect_close("dropout, default generator", c, g, {});
}

GPU_CASE(factories, on_device) {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64}) {
    ctx.expect_close(std::string("arange ") + dtype_name(dt), arange(-3.0, 17.0, 0.5, dt),
                     arange(-3.0, 17.0, 0.5, on_gpu(dt)), {});
    ctx.expect_close(std::string("full ") + dtype_name(dt), full({3, 5}, -2.0, dt), full({3, 5}, -2.0, on_gpu(dt)), {});
  }
  ctx.expect_close("arange(end) i64", arange(11.0, DType::i64), arange(11.0, on_gpu(DType::i64)), {});
  ctx.expect_close("tensor()", tensor({1, 2, 3, 4, 5, 6}, {2, 3}, DType::f64),
                   tensor({1, 2, 3, 4, 5, 6}, {2, 3}, on_gpu(DType::f64)), {});
  ctx.expect_close("zeros/ones", zeros({4, 4}) + ones({4, 4}), zeros({4, 4}, on_gpu(DType::f32)) + ones({4, 4}, on_gpu(DType::f32)),
                   {});
  const Tensor r = randn({8}, on_gpu(DType::f32).with_requires_grad(true));
  ctx.expect_true("randn on cuda with requires_grad", r.is_cuda() && r.requires_grad() && r.is_leaf());
}

}  // namespace cohort::gpu_check
