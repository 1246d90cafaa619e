// Device parity of indexing and joining: index_select, index_add, gather, scatter_add, embedding,
// cat, stack, split and chunk, with their gradients, in every floating dtype and on integer
// tensors; indices on the GPU and on the CPU; odd sizes, strided inputs, negative dims; and the
// CPU's IndexError (same words) for an index out of range, after which the device still works.
//
// Sums with repeated indices (index_add, scatter_add and the gradients of index_select, gather
// and embedding) use atomics on the GPU, so they add in another order than the CPU: they are
// compared at the dtype's tolerance, never bit for bit.
#include <string>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};

Tensor i64(const std::vector<int64_t>& v, Shape shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
  return from_vector<int64_t>(v, std::move(shape));
}

// Runs f on the CPU and on cuda:0 and checks that both throw E with the same message.
template <class E>
void expect_same_error(Context& ctx, const std::string& what, const std::function<void(const Device&)>& f) {
  std::string cpu_msg, gpu_msg;
  bool cpu_threw = false, gpu_threw = false;
  try {
    f(Device::cpu());
  } catch (const E& e) {
    cpu_threw = true;
    cpu_msg = e.what();
  }
  try {
    f(Device::cuda(0));
  } catch (const E& e) {
    gpu_threw = true;
    gpu_msg = e.what();
  } catch (const std::exception& e) {
    gpu_msg = std::string("another error: ") + e.what();
  }
  const bool ok = cpu_threw && gpu_threw && cpu_msg == gpu_msg;
  ctx.expect_true(what, ok, ok ? "" : "cpu: '" + cpu_msg + "' gpu: '" + gpu_msg + "'");
}

// A small op on the device still runs after an error (the context was not poisoned).
void expect_device_alive(Context& ctx, const std::string& what) {
  try {
    const Tensor x = arange(10.0, TensorOptions().with_device(Device::cuda(0)));
    ctx.expect_true(what + ": device still works", x.sum().item<float>() == 45.0f);
  } catch (const std::exception& e) {
    ctx.expect_true(what + ": device still works", false, e.what());
  }
}

}  // namespace

GPU_CASE(indexing, index_select) {
  for (DType dt : kFloats) {
    const Tensor x = ctx.randn({7, 13, 5}, dt);
    const Tensor idx = i64({3, 0, 12, 3, 7, 3, 1});  // repeats: the gradient sums
    ctx.parity("dim 1", {x, idx}, [](const Tensors& in) { return Tensors{index_select(in[0], 1, in[1])}; },
               tol_for(dt));
    ctx.parity("dim 0", {x, i64({6, 6, 0})}, [](const Tensors& in) { return Tensors{index_select(in[0], 0, in[1])}; },
               tol_for(dt));
    ctx.parity("dim -1 (rows of one element)", {x, i64({4, 0, 4, 2})},
               [](const Tensors& in) { return Tensors{index_select(in[0], -1, in[1])}; }, tol_for(dt));
    ctx.parity("transposed input", {x, i64({1, 2})},
               [](const Tensors& in) { return Tensors{index_select(in[0].transpose(0, 2), 0, in[1])}; }, tol_for(dt));
    // The index on the CPU while x is on the GPU: checked on the host, copied over.
    ctx.parity("cpu index", {x}, [idx](const Tensors& in) { return Tensors{index_select(in[0], 1, idx)}; },
               tol_for(dt));
  }
  // Wide rows (16-byte copies), an i32 index, integer and bool tensors, an empty index.
  ctx.parity("wide rows bf16", {ctx.randn({300, 768}, DType::bf16), ctx.randint(0, 300, {517})},
             [](const Tensors& in) { return Tensors{index_select(in[0], 0, in[1])}; }, tol_for(DType::bf16));
  ctx.parity("i32 index", {ctx.randn({40, 9}), ctx.randint(0, 40, {33}, DType::i32)},
             [](const Tensors& in) { return Tensors{index_select(in[0], 0, in[1])}; }, tol_for(DType::f32));
  ctx.parity("i64 tensor", {ctx.randint(-100, 100, {11, 6}), i64({5, 1, 10})},
             [](const Tensors& in) { return Tensors{index_select(in[0], 0, in[1])}; }, {});
  ctx.parity("i32 tensor dim 1", {ctx.randint(-100, 100, {11, 6}, DType::i32), i64({5, 1, 0})},
             [](const Tensors& in) { return Tensors{index_select(in[0], 1, in[1])}; }, {});
  ctx.parity("bool tensor", {ctx.randint(0, 2, {9, 5}, DType::boolean), i64({8, 0, 3})},
             [](const Tensors& in) { return Tensors{index_select(in[0], 0, in[1])}; }, {});
  ctx.parity("empty index", {ctx.randn({4, 3}), i64(std::vector<int64_t>{}, {0})},
             [](const Tensors& in) { return Tensors{index_select(in[0], 0, in[1])}; }, tol_for(DType::f32));
}

GPU_CASE(indexing, index_add) {
  for (DType dt : kFloats) {
    const Tensor x = ctx.randn({5, 6, 7}, dt), src = ctx.randn({5, 9, 7}, dt);
    const Tensor idx = i64({0, 5, 5, 2, 0, 5, 1, 3, 4});
    ctx.parity("dim 1", {x, idx, src}, [](const Tensors& in) { return Tensors{index_add(in[0], 1, in[1], in[2])}; },
               tol_for(dt));
    ctx.parity("dim -1", {ctx.randn({4, 8}, dt), i64({7, 7, 0}), ctx.randn({4, 3}, dt)},
               [](const Tensors& in) { return Tensors{index_add(in[0], -1, in[1], in[2])}; }, tol_for(dt));
    ctx.parity("strided source", {ctx.randn({6, 4}, dt), i64({1, 1, 5}), ctx.randn({4, 3}, dt)},
               [](const Tensors& in) { return Tensors{index_add(in[0], 0, in[1], in[2].t())}; }, tol_for(dt));
  }
  ctx.parity("i64", {ctx.randint(-9, 9, {6, 5}), i64({2, 2, 2, 0}), ctx.randint(-9, 9, {4, 5})},
             [](const Tensors& in) { return Tensors{index_add(in[0], 0, in[1], in[2])}; }, {});
  ctx.parity("i32", {ctx.randint(-9, 9, {6, 5}, DType::i32), i64({4, 0}), ctx.randint(-9, 9, {6, 2}, DType::i32)},
             [](const Tensors& in) { return Tensors{index_add(in[0], 1, in[1], in[2])}; }, {});
  // Many repeats into few rows: the atomics under contention.
  ctx.parity("contended f32", {zeros({7, 300}), ctx.randint(0, 7, {4000}), ctx.randn({4000, 300})},
             [](const Tensors& in) { return Tensors{index_add(in[0], 0, in[1], in[2])}; }, {1e-5, 1e-4});
}

GPU_CASE(indexing, gather) {
  for (DType dt : kFloats) {
    const Tensor x = ctx.randn({6, 7, 9}, dt);
    ctx.parity("dim 1", {x, ctx.randint(0, 7, {6, 4, 9})},
               [](const Tensors& in) { return Tensors{gather(in[0], 1, in[1])}; }, tol_for(dt));
    ctx.parity("smaller index", {x, ctx.randint(0, 6, {5, 3, 8})},
               [](const Tensors& in) { return Tensors{gather(in[0], 0, in[1])}; }, tol_for(dt));
    ctx.parity("dim -1, transposed input", {x, ctx.randint(0, 6, {9, 7, 11})},
               [](const Tensors& in) { return Tensors{gather(in[0].transpose(0, 2), -1, in[1])}; }, tol_for(dt));
  }
  // Cross-entropy's pattern: one target per row, index on the CPU; integer and 0-dim tensors.
  const Tensor targets = ctx.randint(0, 33, {64, 1});
  ctx.parity("targets (cpu index)", {ctx.randn({64, 33})},
             [targets](const Tensors& in) { return Tensors{gather(in[0], 1, targets)}; }, tol_for(DType::f32));
  ctx.parity("i64 tensor", {ctx.randint(-50, 50, {5, 8}), ctx.randint(0, 8, {5, 3})},
             [](const Tensors& in) { return Tensors{gather(in[0], 1, in[1])}; }, {});
  ctx.parity("0-dim", {scalar_tensor(2.5), scalar_tensor(0, DType::i64)},
             [](const Tensors& in) { return Tensors{gather(in[0], 0, in[1])}; }, tol_for(DType::f32));
}

GPU_CASE(indexing, scatter_add) {
  for (DType dt : kFloats) {
    ctx.parity("dim 0", {ctx.randn({5, 7}, dt), ctx.randint(0, 5, {9, 7}), ctx.randn({9, 7}, dt)},
               [](const Tensors& in) { return Tensors{scatter_add(in[0], 0, in[1], in[2])}; }, tol_for(dt));
    // Source larger than the index (unreached source entries get no gradient), dim -1.
    ctx.parity("dim -1, larger source", {ctx.randn({4, 6, 5}, dt), ctx.randint(0, 5, {3, 6, 7}),
                                         ctx.randn({4, 7, 9}, dt)},
               [](const Tensors& in) { return Tensors{scatter_add(in[0], -1, in[1], in[2])}; }, tol_for(dt));
    ctx.parity("strided source", {ctx.randn({3, 4}, dt), ctx.randint(0, 4, {3, 4}), ctx.randn({4, 3}, dt)},
               [](const Tensors& in) { return Tensors{scatter_add(in[0], 1, in[1], in[2].t())}; }, tol_for(dt));
  }
  ctx.parity("i64", {ctx.randint(-9, 9, {6, 5}), ctx.randint(0, 6, {8, 5}), ctx.randint(-9, 9, {8, 5})},
             [](const Tensors& in) { return Tensors{scatter_add(in[0], 0, in[1], in[2])}; }, {});
  ctx.parity("contended f32", {zeros({5, 64}), ctx.randint(0, 5, {4000, 64}), ctx.randn({4000, 64})},
             [](const Tensors& in) { return Tensors{scatter_add(in[0], 0, in[1], in[2])}; }, {1e-5, 1e-4});
}

GPU_CASE(indexing, embedding) {
  for (DType dt : kFloats) {
    const Tensor w = ctx.randn({50, 33}, dt);
    ctx.parity("i64 indices", {w, ctx.randint(0, 50, {4, 7})},
               [](const Tensors& in) { return Tensors{embedding(in[0], in[1])}; }, tol_for(dt));
    const Tensor cpu_idx = ctx.randint(0, 50, {3, 5}, DType::i32);
    ctx.parity("i32 indices on the cpu", {w},
               [cpu_idx](const Tensors& in) { return Tensors{embedding(in[0], cpu_idx)}; }, tol_for(dt));
  }
  // A language model's shapes: 16-byte row copies, many repeated tokens in the gradient (f32
  // accumulation for bf16 tables, as on the CPU).
  ctx.parity("lm bf16", {ctx.randn({1000, 768}, DType::bf16), ctx.randint(0, 1000, {8, 512})},
             [](const Tensors& in) { return Tensors{embedding(in[0], in[1])}; }, tol_for(DType::bf16));
}

GPU_CASE(indexing, bad_index) {
  const Tensor x = ctx.randn({4, 6});
  auto on = [&x](const Device& d) { return x.to(d); };
  expect_same_error<IndexError>(ctx, "index_select index 6", [&](const Device& d) {
    index_select(on(d), 1, i64({0, 6, 2}).to(d));
  });
  expect_same_error<IndexError>(ctx, "index_select index -1 (cpu index)", [&](const Device& d) {
    index_select(on(d), 0, i64({-1}));
  });
  expect_same_error<IndexError>(ctx, "index_add index 4", [&](const Device& d) {
    index_add(on(d), 0, i64({1, 4}).to(d), zeros({2, 6}, TensorOptions().with_device(d)));
  });
  expect_same_error<IndexError>(ctx, "gather index 9", [&](const Device& d) {
    gather(on(d), 1, i64({0, 1, 9, 2}, {2, 2}).to(d));
  });
  expect_same_error<IndexError>(ctx, "scatter_add index -3", [&](const Device& d) {
    scatter_add(on(d), 0, i64({1, -3}, {1, 2}).to(d), ones({1, 2}, TensorOptions().with_device(d)));
  });
  expect_same_error<IndexError>(ctx, "embedding index 50", [&](const Device& d) {
    embedding(zeros({50, 8}, TensorOptions().with_device(d)), i64({3, 50, 7}).to(d));
  });
  expect_same_error<IndexError>(ctx, "embedding, empty rows", [&](const Device& d) {
    embedding(zeros({5, 0}, TensorOptions().with_device(d)), i64({3, 5}).to(d));
  });
  expect_device_alive(ctx, "after the index errors");
  // Mixed devices are a DeviceError, not a read of the wrong memory.
  bool threw = false;
  try {
    index_select(x, 0, i64({0}).to(Device::cuda(0)));
  } catch (const DeviceError&) {
    threw = true;
  }
  ctx.expect_true("cpu input, cuda index: DeviceError", threw);
  threw = false;
  try {
    cat({x, x.to(Device::cuda(0))});
  } catch (const DeviceError&) {
    threw = true;
  }
  ctx.expect_true("cat of cpu and cuda tensors: DeviceError", threw);
}

GPU_CASE(joining, cat_stack) {
  for (DType dt : kFloats) {
    const Tensor a = ctx.randn({3, 5, 7}, dt), b = ctx.randn({3, 2, 7}, dt), c = ctx.randn({3, 1, 7}, dt);
    ctx.parity("cat dim 1", {a, b, c}, [](const Tensors& in) { return Tensors{cat(in, 1)}; }, tol_for(dt));
    ctx.parity("cat dim -1", {a, ctx.randn({3, 5, 3}, dt)}, [](const Tensors& in) { return Tensors{cat(in, -1)}; },
               tol_for(dt));
    ctx.parity("cat dim 0", {a, ctx.randn({4, 5, 7}, dt)}, [](const Tensors& in) { return Tensors{cat(in, 0)}; },
               tol_for(dt));
    // A transposed piece goes through the strided copy; an empty piece is skipped.
    ctx.parity("cat strided + empty", {a, ctx.randn({3, 7, 4}, dt), ctx.randn({3, 0, 7}, dt)},
               [](const Tensors& in) { return Tensors{cat({in[0], in[1].transpose(1, 2), in[2]}, 1)}; }, tol_for(dt));
    ctx.parity("stack dim 0", {a, a * 2.0}, [](const Tensors& in) { return Tensors{stack(in, 0)}; }, tol_for(dt));
    ctx.parity("stack dim -1", {b, ctx.randn({3, 2, 7}, dt), ctx.randn({3, 2, 7}, dt)},
               [](const Tensors& in) { return Tensors{stack(in, -1)}; }, tol_for(dt));
  }
  // Odd byte counts (3-byte rows, 1-byte units), integers, bool, wide rows (16-byte units).
  ctx.parity("cat bool", {ctx.randint(0, 2, {4, 3}, DType::boolean), ctx.randint(0, 2, {4, 5}, DType::boolean)},
             [](const Tensors& in) { return Tensors{cat(in, 1)}; }, {});
  ctx.parity("cat i32 odd rows", {ctx.randint(-5, 5, {9, 3}, DType::i32), ctx.randint(-5, 5, {9, 1}, DType::i32)},
             [](const Tensors& in) { return Tensors{cat(in, 1)}; }, {});
  ctx.parity("cat i64 dim 0", {ctx.randint(-5, 5, {2, 3}), ctx.randint(-5, 5, {5, 3})},
             [](const Tensors& in) { return Tensors{cat(in, 0)}; }, {});
  ctx.parity("cat wide bf16", {ctx.randn({64, 1024}, DType::bf16), ctx.randn({64, 512}, DType::bf16)},
             [](const Tensors& in) { return Tensors{cat(in, 1)}; }, tol_for(DType::bf16));
}

GPU_CASE(joining, split_chunk) {
  for (DType dt : kFloats) {
    const Tensor x = ctx.randn({7, 10}, dt);
    // Pieces are views; their gradients scatter back through zeros on the input's device.
    ctx.parity("split 3 dim 0", {x}, [](const Tensors& in) { return split(in[0], 3, 0); }, tol_for(dt));
    ctx.parity("split sizes dim -1", {x},
               [](const Tensors& in) { return split(in[0], std::vector<int64_t>{4, 0, 6}, -1); }, tol_for(dt));
    ctx.parity("chunk 4 dim 1", {x}, [](const Tensors& in) { return chunk(in[0], 4, 1); }, tol_for(dt));
    ctx.parity("select + slice step 2", {x},
               [](const Tensors& in) { return Tensors{in[0].select(0, -2), in[0].slice(1, 1, 9, 2)}; }, tol_for(dt));
  }
}

}  // namespace cohort::gpu_check
