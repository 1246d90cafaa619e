// cohort/core: tensors, autograd and ops on the CPU.
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
#include "cohort/core/autograd.h"
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
#include "cohort/core/shape.h"
#include "cohort/core/tensor.h"
