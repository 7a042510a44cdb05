// Test helper: set (or unset) an environment variable for a scope, and put back what was there.
//
// Thread safety: none; setenv/unsetenv are process-wide, so use it from the test's main thread
// before starting threads or child processes that read the variable. Create it after a
// FakeNvmlEnvironment, so it restores its variable before the environment restores its own.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace chase::testing {

class ScopedEnv {
 public:
  // `value` nullopt unsets the variable for the scope.
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* previous = std::getenv(name_.c_str())) previous_ = previous;
    set(value);
  }
  ~ScopedEnv() { set(previous_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  void set(const std::optional<std::string>& value) const {
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

  std::string name_;
  std::optional<std::string> previous_;
};

}  // namespace chase::testing
