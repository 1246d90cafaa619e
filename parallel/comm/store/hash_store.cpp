// HashStore: the Store for ranks that are threads of one process.
#include <string>

#include "../deadline-impl.h"
#include "cohort/parallel/comm/store.h"

namespace cohort::parallel {

void HashStore::set(const std::string& key, const std::string& value) {
  std::lock_guard<std::mutex> lock(mutex_);
  values_[key] = value;
  changed_.notify_all();
}

std::string HashStore::get(const std::string& key, Milliseconds timeout) {
  wait({key}, timeout);
  std::lock_guard<std::mutex> lock(mutex_);
  return values_.at(key);
}

int64_t HashStore::add(const std::string& key, int64_t delta) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = values_.find(key);
  int64_t value = delta;
  if (it != values_.end()) {
    try {
      value += std::stoll(it->second);
    } catch (const std::exception&) {
      COHORT_THROW(ValueError, "store add '", key, "': the key holds '", it->second, "', which is not an integer");
    }
  }
  values_[key] = std::to_string(value);
  changed_.notify_all();
  return value;
}

void HashStore::wait(const std::vector<std::string>& keys, Milliseconds timeout) {
  const auto deadline = detail::deadline_after(timeout);
  std::unique_lock<std::mutex> lock(mutex_);
  auto all_there = [&] {
    for (const auto& k : keys) {
      if (!values_.count(k)) return false;
    }
    return true;
  };
  while (!all_there() && (detail::wait_until(changed_, lock, deadline) || detail::Clock::now() < deadline)) {
  }
  if (!all_there()) {
    std::string missing;
    for (const auto& k : keys) {
      if (!values_.count(k)) missing += (missing.empty() ? "'" : ", '") + k + "'";
    }
    COHORT_THROW(TimeoutError, "store wait: ", missing, " not set within ", timeout.count(), " ms (in-process store)");
  }
}

bool HashStore::check(const std::vector<std::string>& keys) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& k : keys) {
    if (!values_.count(k)) return false;
  }
  return true;
}

}  // namespace cohort::parallel
