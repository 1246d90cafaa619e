// Device parity of conv2d (stride, padding, dilation, groups, bias) and max/avg pooling (padding,
// overlapping windows, count_include_pad, ties and NaN), forward and backward, in every floating
// dtype.
//
// Tolerances: pooling computes what the CPU loops compute in the same order, so tol_for(dtype) is
// generous there. conv2d in f32 uses 1e-4 relative (atol 1e-5) rather than 1e-5: cuDNN's heuristics
// may pick Winograd or FFT algorithms, whose transforms round several times per output and land
// about ten times further from the direct sum than a plain reordering would. bf16/f16 use
// tol_for(dtype): both devices accumulate in f32 and round the result once (the CPU converts to f32
// and back).
#include <cmath>
#include <string>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

Tol conv_tol(DType dt) { return dt == DType::f32 ? Tol{1e-4, 1e-5} : tol_for(dt); }

Tensors one(const Tensor& t) { return Tensors{t}; }

}  // namespace

GPU_CASE(conv, conv2d) {
  struct Case {
    const char* what;
    Shape x, w;
    Conv2dOptions o;
    bool bias;
  };
  const Case cases[] = {
      {"3x3 pad 1 + bias", {2, 3, 10, 9}, {8, 3, 3, 3}, {1, 1, 1, 1}, true},
      {"stride 2 pad 2", {2, 4, 11, 12}, {6, 4, 5, 5}, {2, 2, 1, 1}, true},
      {"dilation 2", {1, 3, 13, 13}, {4, 3, 3, 3}, {1, 1, 2, 1}, false},
      {"groups 2", {2, 6, 8, 8}, {4, 3, 3, 3}, {1, 1, 1, 2}, true},
      {"depthwise", {2, 8, 9, 7}, {8, 1, 3, 3}, {1, 1, 1, 8}, true},
      {"1x1", {3, 16, 5, 5}, {32, 16, 1, 1}, {1, 0, 1, 1}, false},
      {"kernel = input", {2, 3, 4, 4}, {5, 3, 4, 4}, {1, 0, 1, 1}, true},
  };
  for (DType dt : kFloats) {
    for (const Case& c : cases) {
      Tensors in{ctx.randn(c.x, dt), ctx.randn(c.w, dt)};
      if (c.bias) in.push_back(ctx.randn({c.w[0]}, dt));
      const Conv2dOptions o = c.o;
      ctx.parity(std::string("conv2d ") + c.what, in, [o](const Tensors& t) {
        return one(conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), o));
      }, conv_tol(dt));
    }
  }
  // A ResNet-like layer, large enough that cuDNN picks its fast algorithms.
  ctx.parity("conv2d resnet 3x3 (8,64,28,28)", {ctx.randn({8, 64, 28, 28}), ctx.randn({64, 64, 3, 3}) * 0.05},
             [](const Tensors& t) { return one(conv2d(t[0], t[1], Tensor(), {1, 1, 1, 1})); }, conv_tol(DType::f32));
  // A contiguous batch that starts inside its storage (a data loader's slice): a pointer aligned to
  // the element only, which some cuDNN kernels refuse; the plan must still find one that runs.
  for (DType dt : {DType::f32, DType::bf16}) {
    ctx.parity("conv2d on a batch slice (offset 1 image + 1 element)", {ctx.randn({3 * 3 * 10 * 9 + 1}, dt),
               ctx.randn({8, 3, 3, 3}, dt)}, [](const Tensors& t) {
      const Tensor x = t[0].slice(0, 1, 3 * 3 * 10 * 9 + 1).reshape({3, 3, 10, 9}).slice(0, 1, 3);
      return one(conv2d(x, t[1], Tensor(), {1, 1, 1, 1}));
    }, conv_tol(dt));
  }
  // A non-contiguous input (made contiguous before cuDNN).
  ctx.parity("conv2d permuted input", {ctx.randn({2, 9, 8, 3}), ctx.randn({4, 3, 3, 3})},
             [](const Tensors& t) { return one(conv2d(t[0].permute({0, 3, 1, 2}), t[1], Tensor(), {1, 1, 1, 1})); },
             conv_tol(DType::f32));
}

GPU_CASE(conv, pool) {
  struct Case {
    const char* what;
    Shape x;
    Pool2dOptions o;
  };
  const Case cases[] = {
      {"2x2", {2, 3, 8, 10}, {2, 0, 0, true}},
      {"3x3 stride 2 pad 1 (overlap)", {2, 3, 9, 11}, {3, 2, 1, true}},
      {"3x3 stride 1 pad 1", {1, 2, 7, 6}, {3, 1, 1, true}},
      {"3x3 stride 2 pad 1 exclude pad", {2, 3, 9, 11}, {3, 2, 1, false}},
      {"odd input 2x2", {2, 2, 7, 5}, {2, 0, 0, true}},
      {"4x4 stride 3 pad 2", {1, 3, 13, 10}, {4, 3, 2, false}},
  };
  for (DType dt : kFloats) {
    for (const Case& c : cases) {
      const Pool2dOptions o = c.o;
      // bf16/f16 inputs have ties within a window: the first maximum must win on both devices.
      ctx.parity(std::string("max_pool2d ") + c.what, {ctx.randn(c.x, dt)},
                 [o](const Tensors& t) { return one(max_pool2d(t[0], o)); }, tol_for(dt));
      ctx.parity(std::string("avg_pool2d ") + c.what, {ctx.randn(c.x, dt)},
                 [o](const Tensors& t) { return one(avg_pool2d(t[0], o)); }, tol_for(dt));
    }
  }
  // Exact ties (integers) and a NaN: the first maximum wins, a NaN wins over everything.
  Tensor x = ctx.randint(-2, 3, {1, 2, 6, 6}).to(DType::f32);
  x.data_ptr<float>()[7] = NAN;
  ctx.parity("max_pool2d ties and NaN", {x}, [](const Tensors& t) { return one(max_pool2d(t[0], {3, 1, 1, true})); },
             tol_for(DType::f32));
}

}  // namespace cohort::gpu_check
