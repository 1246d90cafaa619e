// cohort/core: tensors, autograd, ops, nn modules, optimizers, data and fit() on the CPU.
//
//   #include "cohort/core/core.h"
//   using namespace cohort;
//   Generator gen(42);
//   Tensor w = randn({784, 10}, {}, &gen).requires_grad_();
//   Tensor x = rand({32, 784}, {}, &gen);
//   Tensor y = randint(0, 10, {32}, DType::i64, &gen);
//   Tensor loss = cross_entropy(matmul(x, w), y);
//   loss.backward();                   // w.grad(): (784, 10)
//   { NoGradGuard g; add_(w, w.grad(), -0.1); }
#pragma once

#include "cohort/config.h"
#include "cohort/core/allocator.h"
#include "cohort/core/amp.h"
#include "cohort/core/autograd.h"
#include "cohort/core/cuda.h"
#include "cohort/core/device.h"
#include "cohort/core/dtype.h"
#include "cohort/core/error.h"
#include "cohort/core/generator.h"
#include "cohort/core/ops/elementwise.h"
#include "cohort/core/ops/factory.h"
#include "cohort/core/ops/indexing.h"
#include "cohort/core/ops/linalg.h"
#include "cohort/core/ops/nn.h"
#include "cohort/core/ops/reduction.h"
#include "cohort/core/parallel_for.h"
#include "cohort/core/profiler.h"
#include "cohort/core/shape.h"
#include "cohort/core/tensor.h"

#include "cohort/core/data/dataset.h"
#include "cohort/core/data/formats.h"
#include "cohort/core/data/loader.h"
#include "cohort/core/nn/init.h"
#include "cohort/core/nn/layers.h"
#include "cohort/core/nn/loss.h"
#include "cohort/core/nn/module.h"
#include "cohort/core/nn/transformer.h"
#include "cohort/core/optim/grad_scaler.h"
#include "cohort/core/optim/optimizer.h"
#include "cohort/core/optim/schedule.h"
#include "cohort/core/serialize.h"
#include "cohort/core/train/callbacks.h"
#include "cohort/core/train/fit.h"
#include "cohort/core/train/progress.h"
