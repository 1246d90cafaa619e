// An out-of-tree program: fits y = 3x - 1 with cohort's tensors and autograd.
#include <cstdio>

#include "cohort/core/core.h"

int main() {
  using namespace cohort;
  Generator gen(1);
  Tensor x = rand({64, 1}, {}, &gen);
  Tensor y = x * 3.0 - 1.0;
  Tensor w = zeros({1, 1}).requires_grad_();
  Tensor b = zeros({1}).requires_grad_();
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    Tensor diff = matmul(x, w) + b - y;
    Tensor loss = (diff * diff).mean();
    if (step == 0) first = loss.item();
    last = loss.item();
    w.set_grad(Tensor());
    b.set_grad(Tensor());
    loss.backward();
    NoGradGuard no_grad;
    add_(w, w.grad(), -0.5);
    add_(b, b.grad(), -0.5);
  }
  std::printf("consumer: loss went from %.4f to %.6f (cohort %s)\n", first, last, COHORT_VERSION_STRING);
  return last < first * 0.01 ? 0 : 1;
}
