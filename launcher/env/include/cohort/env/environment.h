#pragma once
// cohort::env — the one module that reads the process environment.
//
// Everything else in cohort (cohort-run, and later the parallel module) receives the environment
// as an `Environment` value, read once, and turns it into typed structs (`RankEnv`, `LauncherEnv`)
// that say where every value came from. That keeps `getenv` out of the rest of the code, makes the
// logic testable with a hand-written map, and lets error messages name the variables involved.
//
//   cohort::env::Environment env = cohort::env::Environment::from_process();
//   cohort::env::RankEnv rank = cohort::env::RankEnv::from_contract(env);   // RANK, WORLD_SIZE, ...
//   std::printf("rank %d of %d\n", rank.rank, rank.world_size);
//
// This library depends on nothing but the C++ standard library and POSIX.

#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cohort::env {

// A missing, malformed or inconsistent environment. The message says what was expected, what was
// found (naming the variables) and what to do; it carries no program-name prefix, so the caller
// (cohort-run's main, or a library) can add its own.
class EnvError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// An immutable-by-default snapshot of environment variables.
class Environment {
 public:
  Environment() = default;
  explicit Environment(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}

  // Reads the process environment (`environ`) once. The only function in cohort that does.
  static Environment from_process();

  std::optional<std::string> get(const std::string& name) const;
  bool has(const std::string& name) const { return vars_.count(name) != 0; }
  void set(const std::string& name, const std::string& value) { vars_[name] = value; }
  void unset(const std::string& name) { vars_.erase(name); }

  const std::map<std::string, std::string>& vars() const { return vars_; }
  // "NAME=value" strings in name order, as execve() wants them.
  std::vector<std::string> to_strings() const;

 private:
  std::map<std::string, std::string> vars_;
};

// Strict integer parsing for environment values: the whole string must be a decimal integer in
// [min_value, max_value]. Throws EnvError naming the variable, e.g.
//   "SLURM_PROCID='x3' is not an integer >= 0"
int parse_int(const std::string& name, const std::string& value, int min_value = 0,
              int max_value = 2147483647);

// `name`'s value parsed with parse_int, or nullopt when unset.
std::optional<int> get_int(const Environment& env, const std::string& name, int min_value = 0,
                           int max_value = 2147483647);

}  // namespace cohort::env
