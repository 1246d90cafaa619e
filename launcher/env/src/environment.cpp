#include "cohort/env/environment.h"

#include <cerrno>
#include <cstdlib>
#include <string>

extern "C" char** environ;  // POSIX; declared here because <unistd.h> hides it behind _GNU_SOURCE

namespace cohort::env {

Environment Environment::from_process() {
  std::map<std::string, std::string> vars;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string kv(*entry);
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;  // not NAME=value: nothing can read it
    vars.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  return Environment(std::move(vars));
}

std::optional<std::string> Environment::get(const std::string& name) const {
  auto it = vars_.find(name);
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> Environment::to_strings() const {
  std::vector<std::string> out;
  out.reserve(vars_.size());
  for (const auto& [name, value] : vars_) out.push_back(name + "=" + value);
  return out;
}

int parse_int(const std::string& name, const std::string& value, int min_value, int max_value) {
  auto fail = [&]() -> int {
    std::string range = max_value == 2147483647
                            ? ">= " + std::to_string(min_value)
                            : "in [" + std::to_string(min_value) + ", " + std::to_string(max_value) + "]";
    throw EnvError(name + "='" + value + "' is not an integer " + range);
  };
  if (value.empty()) return fail();
  std::size_t i = (value[0] == '-' || value[0] == '+') ? 1 : 0;
  if (i == value.size()) return fail();
  for (std::size_t k = i; k < value.size(); ++k)
    if (value[k] < '0' || value[k] > '9') return fail();
  errno = 0;
  long long v = std::strtoll(value.c_str(), nullptr, 10);
  if (errno == ERANGE || v < min_value || v > max_value) return fail();
  return static_cast<int>(v);
}

std::optional<int> get_int(const Environment& env, const std::string& name, int min_value,
                           int max_value) {
  auto value = env.get(name);
  if (!value) return std::nullopt;
  return parse_int(name, *value, min_value, max_value);
}

}  // namespace cohort::env
