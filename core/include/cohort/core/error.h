// Typed errors for cohort. Libraries throw; only a main() turns an exception into an exit code.
//
// Every message says what the operation expected, what it got, and (where it helps) what to do:
//   matmul: shapes (4, 3) and (5, 2) cannot be multiplied: inner dims 3 and 5 differ
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cohort {

class Error : public std::runtime_error {
 public:
  Error(const std::string& message, const char* file = "", int line = 0)
      : std::runtime_error(message), file_(file), line_(line) {}
  // Where in cohort's source the error was raised (for bug reports), not part of what().
  const char* file() const { return file_; }
  int line() const { return line_; }

 private:
  const char* file_;
  int line_;
};

class ShapeError : public Error { using Error::Error; };     // shapes that do not fit together
class DTypeError : public Error { using Error::Error; };     // a dtype the op does not support
class IndexError : public Error { using Error::Error; };     // a dim or index out of range
class ValueError : public Error { using Error::Error; };     // an argument with a bad value
class DeviceError : public Error { using Error::Error; };    // a device that is absent or mixed
class AutogradError : public Error { using Error::Error; };  // misuse of backward/grad

namespace detail {
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace cohort

// COHORT_CHECK(cond, ShapeError, "matmul: ", ...): throws cohort::ShapeError with the
// concatenated message (and this file:line) when cond is false.
#define COHORT_CHECK(cond, ErrorType, ...)                                                  \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      throw ::cohort::ErrorType(::cohort::detail::str_cat(__VA_ARGS__), __FILE__, __LINE__); \
    }                                                                                       \
  } while (0)

#define COHORT_THROW(ErrorType, ...) \
  throw ::cohort::ErrorType(::cohort::detail::str_cat(__VA_ARGS__), __FILE__, __LINE__)
