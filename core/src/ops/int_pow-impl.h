// Integer power by squaring, shared by pow's CPU loop and its CUDA kernel (implementation-only).
#pragma once

#include "host_device-impl.h"

namespace cohort::detail {

// A negative exponent gives what 1 / base^-e truncates to, as PyTorch's integer pow does: 1 for
// base 1, +-1 for base -1, 0 otherwise.
template <class I>
COHORT_HOST_DEVICE inline I int_pow(I base, I e) {
  if (e < 0) {
    if (base == 1) return 1;
    if (base == -1) return (e & 1) ? -1 : 1;
    return 0;
  }
  I r = 1;
  while (e != 0) {
    if (e & 1) r *= base;
    base *= base;
    e >>= 1;
  }
  return r;
}

}  // namespace cohort::detail
