// Value conversion between element types (implementation-only header).
#pragma once

#include <type_traits>

#include "cohort/core/dtype.h"

namespace cohort::detail {

// Converts one value: 16-bit floats go through float, bool is "not zero".
template <class To, class Ti>
inline To cast(Ti v) {
  if constexpr (std::is_same_v<To, Ti>) {
    return v;
  } else if constexpr (std::is_same_v<To, bool>) {
    return static_cast<acc_t<Ti>>(v) != acc_t<Ti>(0);
  } else if constexpr (std::is_same_v<To, BFloat16> || std::is_same_v<To, Half>) {
    return To(static_cast<float>(static_cast<acc_t<Ti>>(v)));
  } else {
    return static_cast<To>(static_cast<acc_t<Ti>>(v));
  }
}

}  // namespace cohort::detail
