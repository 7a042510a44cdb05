// Internal (chased): the carbon intensity of the node's grid, kept fresh by a background thread for
// /metrics (`chased --carbon NAME`; docs/DAEMON.md, "Metrics").
//
// Contract: the constructor starts a thread that asks the provider for latest() at once and then
// every `refresh`; a failure keeps the last good value (its age grows) and is logged when failures
// start and when they end, never thrown. metrics() renders what is known now without calling the
// provider, so a slow or failing provider never holds a scrape:
//   chase_carbon_intensity_grams_per_kwh{provider}   the last good value (absent before the first)
//   chase_carbon_intensity_age_seconds{provider}     seconds since it was fetched (absent likewise)
//   chase_carbon_up{provider}                        1 when the last refresh succeeded, else 0
//   chase_carbon_refresh_failures_total{provider}    failed refreshes since the start
// The destructor stops the thread; it waits for a provider call in progress (bounded by the
// provider's own timeouts).
//
// Thread safety: metrics() and the accessors may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "chase/carbon_provider.h"

namespace chase::server {

class CarbonFeed {
 public:
  CarbonFeed(std::unique_ptr<CarbonProvider> provider, std::chrono::milliseconds refresh);
  ~CarbonFeed();
  CarbonFeed(const CarbonFeed&) = delete;
  CarbonFeed& operator=(const CarbonFeed&) = delete;

  std::string metrics() const;
  // Waits up to `wait` until at least one refresh has finished (for start-up and tests).
  bool wait_for_first_refresh(std::chrono::milliseconds wait) const;

 private:
  void run();
  void refresh_once();

  std::unique_ptr<CarbonProvider> provider_;
  const std::string provider_name_;
  const std::chrono::milliseconds refresh_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::optional<double> value_;
  std::chrono::steady_clock::time_point fetched_at_{};
  bool up_ = false;
  std::size_t refreshes_ = 0;
  std::size_t failures_ = 0;
  std::size_t failing_ = 0;  // consecutive failures
  bool stopping_ = false;
  std::thread worker_;  // last: started once everything above exists
};

// `--carbon SPEC`: a provider name (electricitymaps, watttime, ukgrid, carbon-aware-sdk, file),
// its settings from `config_file` (when not empty) and the environment, or "file:PATH" for a CSV
// (time and gCO2eq/kWh columns). Throws kInvalidArgument naming the option for a bad spec.
std::unique_ptr<CarbonProvider> make_feed_provider(const std::string& spec,
                                                   const std::string& config_file);

}  // namespace chase::server
