// Device parity of training: SGD, Adam and AdamW steps, clip_grad_norm, GradScaler, pinned batches,
// and a few steps of a small MLP (by hand and through fit()), on cuda:0 against the same on the CPU.
//
// The optimizer cases update 54 parameters of different sizes at once, more than one multi-tensor
// launch holds (48), and leave parameter 0 without a gradient in the first step (so its Adam step
// count and its SGD momentum buffer start a step later than the others'). Gradients are made on
// the CPU and copied, so both devices see the same numbers; only the rounding of the updates
// differs (nvcc contracts a * b + c into one fused multiply-add), well inside tol_for(dtype)
// after a few steps.
#include <cmath>
#include <memory>
#include <string>

#include "gpu_check.h"

namespace cohort::gpu_check {

namespace {

const DType kFloats[] = {DType::f32, DType::f64, DType::bf16, DType::f16};
constexpr int kParams = 54;
constexpr int kSteps = 4;

// The same parameters on the CPU and on cuda:0.
struct Twin {
  NamedTensors cpu, gpu;
};

Twin make_params(Context& ctx, DType dt) {
  Twin t;
  for (int i = 0; i < kParams; ++i) {
    const Shape shape = i == kParams - 1 ? Shape{300, 257} : (i % 3 == 0 ? Shape{7 * i + 1} : Shape{i + 1, 5});
    const Tensor v = ctx.randn(shape, dt);
    const std::string name = "p" + std::to_string(i);
    t.cpu.push_back({name, v.clone().requires_grad_()});
    t.gpu.push_back({name, v.to(Device::cuda(0)).requires_grad_()});
  }
  return t;
}

// Fresh random gradients, the same on both sides; parameter 0 has none in step 1.
void set_grads(Context& ctx, Twin& t, int step) {
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    if (i == 0 && step == 1) {
      t.cpu[i].second.set_grad(Tensor());
      t.gpu[i].second.set_grad(Tensor());
      continue;
    }
    const Tensor g = ctx.randn(t.cpu[i].second.shape(), t.cpu[i].second.dtype());
    t.cpu[i].second.set_grad(g);
    t.gpu[i].second.set_grad(g.to(Device::cuda(0)));
  }
}

// Every tensor flattened and joined, in the first one's dtype, on `device`.
Tensor joined(const std::vector<Tensor>& tensors, Device device) {
  std::vector<Tensor> flat;
  for (const Tensor& t : tensors) flat.push_back(t.detach().to(Device::cpu()).reshape({-1}));
  return cat(flat).to(device);
}

std::vector<Tensor> values(const NamedTensors& named) {
  std::vector<Tensor> out;
  for (const auto& [name, t] : named) out.push_back(t);
  return out;
}

// Per-parameter buffers (state_dict() entries other than counts and lrs) joined in key order.
std::vector<Tensor> buffers(const StateDict& state) {
  std::vector<Tensor> out;
  for (const auto& [key, t] : state)
    if (t.dim() > 0) out.push_back(t);
  return out;
}

// Runs kSteps steps of `make(params)` on both devices and compares parameters and state.
template <class Make>
void optimizer_parity(Context& ctx, const std::string& what, DType dt, Make make) {
  Twin t = make_params(ctx, dt);
  auto cpu_opt = make(t.cpu);
  auto gpu_opt = make(t.gpu);
  for (int step = 1; step <= kSteps; ++step) {
    set_grads(ctx, t, step);
    cpu_opt->step();
    gpu_opt->step();
  }
  ctx.expect_close(what + " params", joined(values(t.cpu), Device::cpu()), joined(values(t.gpu), Device::cuda(0)),
                   tol_for(dt));
  const StateDict cs = cpu_opt->state_dict(), gs = gpu_opt->state_dict();
  bool on_cpu = true;
  for (const auto& [key, v] : gs) on_cpu = on_cpu && v.device().is_cpu();
  ctx.expect_true(what + " state_dict() is on the CPU", on_cpu);
  ctx.expect_true(what + " state_dict() keys", cs.size() == gs.size(),
                  std::to_string(cs.size()) + " vs " + std::to_string(gs.size()));
  // The GPU's buffers, copied back to the device for the comparison (expect_close wants a GPU side).
  if (!buffers(cs).empty()) {
    ctx.expect_close(what + " state", joined(buffers(cs), Device::cpu()), joined(buffers(gs), Device::cuda(0)),
                     tol_for(dt));
  }
  bool counts = true;
  for (const auto& [key, v] : cs)
    if (v.dim() == 0 && key != "group.0.lr") counts = counts && gs.count(key) && gs.at(key).item() == v.item();
  ctx.expect_true(what + " step counts", counts);
}

}  // namespace

GPU_CASE(optim, sgd) {
  struct Config {
    const char* name;
    SGDOptions o;
  };
  auto options = [](double momentum, double dampening, double wd, bool nesterov) {
    SGDOptions o;
    o.lr = 0.05;
    o.momentum = momentum;
    o.dampening = dampening;
    o.weight_decay = wd;
    o.nesterov = nesterov;
    return o;
  };
  const Config configs[] = {{"sgd", options(0, 0, 0, false)},
                            {"sgd wd", options(0, 0, 0.01, false)},
                            {"sgd momentum", options(0.9, 0, 0, false)},
                            {"sgd momentum dampening wd", options(0.9, 0.1, 0.01, false)},
                            {"sgd nesterov wd", options(0.9, 0, 0.01, true)}};
  for (DType dt : kFloats) {
    for (const Config& c : configs) {
      optimizer_parity(ctx, c.name, dt, [&](const NamedTensors& p) { return std::make_unique<SGD>(p, c.o); });
    }
  }
}

GPU_CASE(optim, adam_adamw) {
  AdamOptions o;
  o.lr = 1e-2;
  for (DType dt : kFloats) {
    optimizer_parity(ctx, "adam", dt, [&](const NamedTensors& p) { return std::make_unique<Adam>(p, o); });
    AdamOptions l2 = o;
    l2.weight_decay = 0.1;
    optimizer_parity(ctx, "adam l2", dt, [&](const NamedTensors& p) { return std::make_unique<Adam>(p, l2); });
    optimizer_parity(ctx, "adamw wd 0.1", dt, [&](const NamedTensors& p) { return std::make_unique<AdamW>(p, l2); });
  }
}

GPU_CASE(optim, state_dict_round_trip) {
  // Two steps on the GPU, state saved (to the CPU) and loaded into a fresh optimizer on the GPU:
  // the copy's next step is the original's, bit for bit.
  AdamOptions o;
  o.lr = 1e-2;
  Twin t = make_params(ctx, DType::f32);
  AdamW a(t.gpu, o);
  for (int step = 1; step <= 2; ++step) {
    set_grads(ctx, t, step);
    a.step();
  }
  NamedTensors copy;
  for (const auto& [name, p] : t.gpu) copy.push_back({name, p.detach().clone().requires_grad_()});
  AdamW b(copy, o);
  b.load_state_dict(a.state_dict());
  set_grads(ctx, t, 3);
  for (size_t i = 0; i < copy.size(); ++i) copy[i].second.set_grad(t.gpu[i].second.grad().clone());
  a.step();
  b.step();
  ctx.expect_true("state_dict() entries", b.state_dict().size() == a.state_dict().size());
  ctx.expect_close("GPU state reloaded continues", joined(values(t.gpu), Device::cpu()),
                   joined(values(copy), Device::cuda(0)), {0, 0});

  // State from the CPU (two steps there) loads onto parameters moved to the GPU and continues as
  // the CPU does.
  Twin u = make_params(ctx, DType::f32);
  AdamW c(u.cpu, o);
  for (int step = 1; step <= 2; ++step) {
    set_grads(ctx, u, step);
    c.step();
  }
  NamedTensors moved;
  for (const auto& [name, p] : u.cpu) moved.push_back({name, p.detach().to(Device::cuda(0)).requires_grad_()});
  AdamW d(moved, o);
  d.load_state_dict(c.state_dict());
  set_grads(ctx, u, 3);
  for (size_t i = 0; i < moved.size(); ++i) moved[i].second.set_grad(u.cpu[i].second.grad().to(Device::cuda(0)));
  c.step();
  d.step();
  ctx.expect_close("CPU state continues on the GPU", joined(values(u.cpu), Device::cpu()),
                   joined(values(moved), Device::cuda(0)), tol_for(DType::f32));
}

GPU_CASE(optim, clip_grad_norm) {
  for (const double max_norm : {1.0, 1e9}) {  // clipped, and left alone
    Twin t = make_params(ctx, DType::f32);
    // A bf16 parameter in the same list, and one whose GPU gradient is an expanded view.
    Tensor b = ctx.randn({33, 9}, DType::bf16);
    t.cpu.push_back({"bf16", b.clone().requires_grad_()});
    t.gpu.push_back({"bf16", b.to(Device::cuda(0)).requires_grad_()});
    Tensor e = ctx.randn({4, 16});
    t.cpu.push_back({"expanded", e.clone().requires_grad_()});
    t.gpu.push_back({"expanded", e.to(Device::cuda(0)).requires_grad_()});
    set_grads(ctx, t, 2);
    const Tensor row = ctx.randn({1, 16});
    t.cpu.back().second.set_grad(row.expand({4, 16}));  // both devices take an expanded gradient
    t.gpu.back().second.set_grad(row.to(Device::cuda(0)).expand({4, 16}));
    const double nc = clip_grad_norm(values(t.cpu), max_norm);
    const double ng = clip_grad_norm(values(t.gpu), max_norm);
    ctx.expect_true("norm max_norm " + std::to_string(max_norm), std::abs(nc - ng) <= 1e-12 * nc,
                    "cpu " + std::to_string(nc) + " gpu " + std::to_string(ng));
    std::vector<Tensor> gc, gg;
    for (size_t i = 0; i + 2 < t.cpu.size(); ++i) {
      gc.push_back(t.cpu[i].second.grad());
      gg.push_back(t.gpu[i].second.grad());
    }
    ctx.expect_close("clipped f32 grads max_norm " + std::to_string(max_norm), joined(gc, Device::cpu()),
                     joined(gg, Device::cuda(0)), tol_for(DType::f32));
    const size_t nb = t.cpu.size() - 2, ne = t.cpu.size() - 1;
    ctx.expect_close("clipped bf16 grad", t.cpu[nb].second.grad(), t.gpu[nb].second.grad(), tol_for(DType::bf16));
    ctx.expect_close("clipped expanded grad", t.cpu[ne].second.grad().contiguous(), t.gpu[ne].second.grad(),
                     tol_for(DType::f32));
  }
  // No gradients at all: norm 0 on both.
  Tensor p = zeros({3}, TensorOptions().with_device(Device::cuda(0))).requires_grad_();
  ctx.expect_true("no gradients", clip_grad_norm({p}, 1.0) == 0.0);
  // Gradients that hold no elements: the device sum of squares has nothing to launch (a zeroed result).
  Tensor empty_p = zeros({0, 4}, TensorOptions().with_device(Device::cuda(0))).requires_grad_();
  empty_p.set_grad(zeros({0, 4}, TensorOptions().with_device(Device::cuda(0))));
  ctx.expect_true("empty gradients", clip_grad_norm({empty_p}, 1.0) == 0.0);
}

GPU_CASE(optim, grad_scaler) {
  // The same sequence on both devices: clean steps, an inf, a NaN, growth after 2 clean steps.
  for (DType dt : {DType::f32, DType::bf16, DType::f16}) {
    GradScalerOptions so;
    so.init_scale = 1024.0;
    so.growth_interval = 2;
    GradScaler cpu_scaler(so), gpu_scaler(so);
    Twin t = make_params(ctx, dt);
    SGDOptions o;
    o.lr = 0.01;
    o.momentum = 0.9;
    SGD cpu_opt(t.cpu, o), gpu_opt(t.gpu, o);
    const char* events[] = {"clean", "clean", "inf", "clean", "nan", "clean", "clean", "clean"};
    bool same = true;
    std::string log;
    for (int step = 1; step <= 8; ++step) {
      const std::string ev = events[step - 1];
      set_grads(ctx, t, step + 1);
      // Scale the gradients as a scaled backward would have (x scale, in the gradient's dtype).
      for (size_t i = 0; i < t.cpu.size(); ++i) {
        Tensor gc = t.cpu[i].second.grad() * cpu_scaler.get_scale();
        if (ev != "clean" && i == 7) gc.select(0, 0).fill_(ev == "inf" ? INFINITY : NAN);
        t.cpu[i].second.set_grad(gc);
        t.gpu[i].second.set_grad(gc.to(Device::cuda(0)));
      }
      const bool sc = cpu_scaler.step(cpu_opt), sg = gpu_scaler.step(gpu_opt);
      cpu_scaler.update();
      gpu_scaler.update();
      same = same && sc == sg && sc == (ev == "clean") && cpu_scaler.get_scale() == gpu_scaler.get_scale() &&
             cpu_scaler.growth_tracker() == gpu_scaler.growth_tracker();
      log += ev + "->" + (sg ? "stepped" : "skipped") + " scale " + std::to_string(gpu_scaler.get_scale()) + "; ";
    }
    ctx.expect_true(std::string("scaler decisions ") + dtype_name(dt), same, log);
    // 1024 -> 2048 (2 clean) -> 1024 (inf) -> 512 (nan) -> 1024 (2 clean) and one clean since.
    ctx.expect_true(std::string("scaler final scale ") + dtype_name(dt),
                    gpu_scaler.get_scale() == 1024.0 && gpu_scaler.growth_tracker() == 1,
                    "scale " + std::to_string(gpu_scaler.get_scale()));
    ctx.expect_close(std::string("params after scaled steps"), joined(values(t.cpu), Device::cpu()),
                     joined(values(t.gpu), Device::cuda(0)), tol_for(dt));
  }
  // unscale_ alone: the gradients divided by the scale.
  Twin t = make_params(ctx, DType::f32);
  SGD cpu_opt(t.cpu, SGDOptions{}), gpu_opt(t.gpu, SGDOptions{});
  set_grads(ctx, t, 2);
  GradScaler a, b;
  a.unscale_(cpu_opt);
  b.unscale_(gpu_opt);
  std::vector<Tensor> gc, gg;
  for (size_t i = 0; i < t.cpu.size(); ++i) {
    gc.push_back(t.cpu[i].second.grad());
    gg.push_back(t.gpu[i].second.grad());
  }
  ctx.expect_close("unscale_", joined(gc, Device::cpu()), joined(gg, Device::cuda(0)), {0, 0});
}

GPU_CASE(data, pinned_loader) {
  auto data = std::make_shared<TensorDataset>(ctx.randn({64, 5}), ctx.randint(0, 3, {64}));
  DataLoaderOptions o;
  o.batch_size = 16;
  o.pin_memory = true;
  o.shuffle = true;
  DataLoader loader(data, o);
  loader.start_epoch(0);
  Batch b;
  int batches = 0;
  bool pinned = true;
  while (loader.next(&b)) {
    pinned = pinned && b.data.is_pinned() && b.target.is_pinned();
    const Batch g = b.to(Device::cuda(0), /*non_blocking=*/true);
    ctx.expect_close("batch " + std::to_string(batches) + " data", b.data, g.data, {0, 0});
    ctx.expect_close("batch " + std::to_string(batches) + " target", b.target, g.target, {0, 0});
    ++batches;
  }
  ctx.expect_true("pinned batches", pinned && batches == 4);
}

namespace {

std::shared_ptr<Sequential> tiny_mlp(uint64_t seed) {
  Generator gen(seed);
  auto m = std::make_shared<Sequential>();
  m->push_back(std::make_shared<Linear>(12, 32, true, &gen));
  m->push_back(std::make_shared<ReLU>());
  m->push_back(std::make_shared<Linear>(32, 5, true, &gen));
  return m;
}

Tensor all_params(const Module& m, Device device) {
  std::vector<Tensor> p;
  for (const auto& [name, t] : m.named_parameters()) p.push_back(t);
  return joined(p, device);
}

}  // namespace

GPU_CASE(train, tiny_mlp) {
  // The same model, data and optimizer on both devices; the model goes to the GPU before its
  // optimizer is made (its state is then made there). Matrix products sum in a different order
  // on the GPU, so the tolerance is a little looser than one op's; Adam, which divides by each
  // gradient's running size, looser still.
  const Tensor x = ctx.randn({64, 12});
  const Tensor y = ctx.randint(0, 5, {64});
  // With autocast the GPU's products run in 16 bits while the CPU reference stays in f32: those
  // runs are held to bf16's tolerance. The f16 run starts its scale at 1024 so that no step of
  // this small model overflows (a skipped step would leave the two sides apart).
  struct Run {
    const char* name;
    bool adam;
    bool scaler;
    DType autocast;  // f32: none
    Tol tol;
  };
  const Run runs[] = {{"sgd momentum", false, false, DType::f32, {1e-4, 1e-5}},
                      {"adamw clip", true, false, DType::f32, {1e-3, 1e-4}},
                      {"sgd with a GradScaler (f32)", false, true, DType::f32, {1e-4, 1e-5}},
                      {"sgd autocast bf16", false, false, DType::bf16, tol_for(DType::bf16)},
                      {"sgd autocast f16 + GradScaler", false, true, DType::f16, tol_for(DType::bf16)}};
  for (const Run& r : runs) {
    auto mc = tiny_mlp(7), mg = tiny_mlp(7);
    mg->to(Device::cuda(0));
    std::unique_ptr<Optimizer> oc, og;
    if (r.adam) {
      AdamOptions o;
      o.lr = 1e-2;
      o.weight_decay = 0.01;
      oc = std::make_unique<AdamW>(mc->named_parameters(), o);
      og = std::make_unique<AdamW>(mg->named_parameters(), o);
    } else {
      SGDOptions o;
      o.lr = 0.1;
      o.momentum = 0.9;
      oc = std::make_unique<SGD>(mc->named_parameters(), o);
      og = std::make_unique<SGD>(mg->named_parameters(), o);
    }
    GradScalerOptions so;
    so.init_scale = 1024.0;
    GradScaler sc(so), sg(so);
    MixedPrecision pc, pg;
    if (r.scaler) {
      pc.grad_scaler = &sc;
      pg.grad_scaler = &sg;
    }
    if (r.autocast != DType::f32) pg.autocast = r.autocast;  // the GPU only: the CPU is the f32 reference
    bool all_stepped = true;
    const double max_norm = r.adam ? 1.0 : 0.0;
    double lc = 0, lg = 0;
    for (int step = 0; step < 5; ++step) {
      const Batch b{x.narrow(0, (step % 4) * 16, 16), y.narrow(0, (step % 4) * 16, 16)};
      oc->zero_grad();
      og->zero_grad();
      lc = forward_backward_step(*mc, cross_entropy_loss(), b, pc).loss;
      lg = forward_backward_step(*mg, cross_entropy_loss(), b, pg).loss;  // moves the batch
      optimizer_step(*oc, mc->parameters(), max_norm, pc);
      all_stepped = optimizer_step(*og, mg->parameters(), max_norm, pg) && all_stepped;
    }
    const double loss_tol = r.autocast == DType::f32 ? 1e-4 : 3e-2;
    ctx.expect_true(
        std::string(r.name) + " last loss, every step taken",
        all_stepped && std::abs(lc - lg) <= loss_tol * std::abs(lc),
        "cpu " + std::to_string(lc) + " gpu " + std::to_string(lg) + (all_stepped ? "" : " (a step was skipped)"));
    ctx.expect_close(std::string(r.name) + " params after 5 steps", all_params(*mc, Device::cpu()),
                     all_params(*mg, Device::cuda(0)), r.tol);
  }

  // fit() with the model on the GPU moves the loader's CPU batches itself.
  auto data = std::make_shared<TensorDataset>(x, y);
  DataLoaderOptions lo;
  lo.batch_size = 16;
  DataLoader lc(data, lo), lg(data, lo);
  auto mc = tiny_mlp(11), mg = tiny_mlp(11);
  mg->to(Device::cuda(0));
  SGDOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  SGD oc(mc->named_parameters(), o), og(mg->named_parameters(), o);
  FitOptions fo;
  fo.epochs = 2;
  fo.verbose = false;
  fo.clip_grad_norm = 1.0;
  const History hc = fit(*mc, cross_entropy_loss(), oc, lc, fo);
  const History hg = fit(*mg, cross_entropy_loss(), og, lg, fo);
  ctx.expect_true("fit steps and loss",
                  hc.steps == hg.steps && std::abs(hc.last_loss - hg.last_loss) <= 1e-4 * hc.last_loss,
                  "cpu " + std::to_string(hc.last_loss) + " gpu " + std::to_string(hg.last_loss));
  ctx.expect_close("fit params", all_params(*mc, Device::cpu()), all_params(*mg, Device::cuda(0)), {1e-4, 1e-5});
  const Metrics ec = evaluate(*mc, cross_entropy_loss(), lc), eg = evaluate(*mg, cross_entropy_loss(), lg);
  // Accuracy may differ by one example whose two best logits are within rounding of each other.
  ctx.expect_true("evaluate loss and accuracy",
                  std::abs(ec.at("loss") - eg.at("loss")) <= 1e-4 * ec.at("loss") &&
                      std::abs(ec.at("accuracy") - eg.at("accuracy")) <= 1.0 / 64 + 1e-12,
                  "cpu " + std::to_string(ec.at("loss")) + "/" + std::to_string(ec.at("accuracy")) + " gpu " +
                      std::to_string(eg.at("loss")) + "/" + std::to_string(eg.at("accuracy")));
}

}  // namespace cohort::gpu_check
