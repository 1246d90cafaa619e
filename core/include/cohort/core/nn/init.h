// Initialisers: fill a parameter in place (under NoGradGuard), PyTorch's formulas.
#pragma once

#include "cohort/core/generator.h"
#include "cohort/core/tensor.h"

namespace cohort::init {

void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void constant_(Tensor& t, double value);
void zeros_(Tensor& t);
void ones_(Tensor& t);
// fan_in/fan_out of a weight: (out, in) for linear, (out, in/groups, kh, kw) for conv.
int64_t fan_in(const Tensor& weight);
int64_t fan_out(const Tensor& weight);
// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
// PyTorch's default for Linear/Conv weights: kaiming_uniform_ with a = sqrt(5), i.e.
// U(-b, b) with b = 1 / sqrt(fan_in).
void kaiming_uniform_(Tensor& t, double a = 2.23606797749979, Generator* gen = nullptr);

}  // namespace cohort::init
