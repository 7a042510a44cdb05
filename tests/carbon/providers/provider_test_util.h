// Shared helpers of the provider tests: fixtures, options pointing at the replay server, a sleep
// recorder (so retries take no time), temporary cache directories and error checks.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "chase/carbon_provider.h"
#include "chase/error.h"
#include "chase/time.h"
#include "support/replay_server.h"
#include "support/temp_dir.h"

namespace chase::testing {

// Secrets used by the tests; no message may contain them.
inline constexpr const char* kApiKey = "em-secret-key-4f1a";
inline constexpr const char* kUsername = "wt-user";
inline constexpr const char* kPassword = "wt-secret-pass-93b2";

inline UtcTime at(const char* text) {
  const auto time = parse_utc_time(text);
  EXPECT_TRUE(time) << text;
  return time.value_or(UtcTime{});
}

// 'now' of every fixture.
inline UtcTime fixture_now() { return at("2026-03-01T12:20:00Z"); }

inline std::filesystem::path fixture_path(const std::string& provider, const std::string& file) {
  return std::filesystem::path(CHASE_SOURCE_DIR) / "tests/carbon/fixtures" / provider / file;
}

inline std::string fixture(const std::string& provider, const std::string& file) {
  std::ifstream in(fixture_path(provider, file), std::ios::binary);
  EXPECT_TRUE(in) << "missing fixture " << provider << "/" << file;
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

inline ReplayResponse ok(const std::string& provider, const std::string& file) {
  return ReplayResponse{200, fixture(provider, file), {}, false};
}
inline ReplayResponse status(int code,
                             std::vector<std::pair<std::string, std::string>> headers = {},
                             std::string body = "") {
  return ReplayResponse{code, std::move(body), std::move(headers), false};
}
inline ReplayResponse hang() { return ReplayResponse{200, "", {}, true}; }

// Records the waits the retry logic asks for instead of sleeping.
class SleepRecorder {
 public:
  SleepFunction function() {
    return [this](std::chrono::milliseconds wait) {
      std::lock_guard lock(mutex_);
      waits_.push_back(wait);
    };
  }
  std::vector<std::chrono::milliseconds> waits() const {
    std::lock_guard lock(mutex_);
    return waits_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::chrono::milliseconds> waits_;
};

// Options for `provider` against `server`: short timeouts, three tries, no jitter, recorded sleeps.
inline CarbonProviderOptions test_options(const std::string& provider, const ReplayServer& server,
                                          std::shared_ptr<Clock> clock, SleepRecorder& sleeps) {
  CarbonProviderOptions options;
  options.base_url = server.base_url();
  options.connect_timeout = std::chrono::milliseconds(1000);
  options.timeout = std::chrono::milliseconds(2000);
  options.retry.max_attempts = 3;
  options.retry.base_backoff = std::chrono::milliseconds(100);
  options.retry.max_backoff = std::chrono::milliseconds(60'000);
  options.retry.jitter = false;
  options.sleep = sleeps.function();
  options.clock = std::move(clock);
  if (provider == "electricitymaps") {
    options.location = "DE";
    options.credentials.api_key = kApiKey;
  } else if (provider == "watttime") {
    options.location = "CAISO_NORTH";
    options.credentials.username = kUsername;
    options.credentials.password = kPassword;
  } else if (provider == "carbon-aware-sdk") {
    options.location = "westeurope";
  }
  return options;
}

// Runs `action`, expecting a chase::Error with `code`; returns its message, checked for secrets.
template <typename Action>
std::string error_message(Action action, ErrorCode code) {
  try {
    action();
  } catch (const Error& error) {
    const std::string message = error.what();
    EXPECT_EQ(error.code(), code) << message;
    EXPECT_EQ(message.find(kApiKey), std::string::npos) << message;
    EXPECT_EQ(message.find(kPassword), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "expected a chase::Error";
  return {};
}

inline std::vector<double> values_of(const CarbonSeries& series) { return series.values(); }

}  // namespace chase::testing
