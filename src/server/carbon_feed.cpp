// chased's carbon-intensity feed (contract: server/carbon_feed.h).
#include "server/carbon_feed.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "chase/error.h"
#include "common/prometheus_text.h"
#include "common/text.h"

namespace chase::server {

CarbonFeed::CarbonFeed(std::unique_ptr<CarbonProvider> provider, std::chrono::milliseconds refresh)
    : provider_(std::move(provider)),
      provider_name_(provider_->name()),
      refresh_(refresh),
      worker_([this] { run(); }) {}

CarbonFeed::~CarbonFeed() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  worker_.join();
}

void CarbonFeed::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    refresh_once();
    lock.lock();
    changed_.wait_for(lock, refresh_, [this] { return stopping_; });
  }
}

// The provider is called without the lock, so a scrape never waits for it.
void CarbonFeed::refresh_once() {
  std::optional<double> value;
  std::string problem;
  try {
    value = provider_->latest().g_per_kwh;
  } catch (const std::exception& e) {
    problem = e.what();
  }
  std::lock_guard lock(mutex_);
  ++refreshes_;
  up_ = value.has_value();
  if (value) {
    value_ = value;
    fetched_at_ = std::chrono::steady_clock::now();
    if (failing_ > 0) {
      spdlog::info("chased: carbon intensity from '{}' available again (after {} failures)",
                   provider_name_, failing_);
    }
    failing_ = 0;
  } else {
    ++failures_;
    if (failing_++ == 0) {
      spdlog::warn(
          "chased: carbon intensity from '{}' failed: {}; /metrics keeps the last value with its "
          "age and chase_carbon_up 0, and the daemon tries again every {} s",
          provider_name_, escape_untrusted(problem, 500),
          std::chrono::duration<double>(refresh_).count());
    }
  }
  changed_.notify_all();
}

bool CarbonFeed::wait_for_first_refresh(std::chrono::milliseconds wait) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, wait, [this] { return refreshes_ > 0; });
}

std::string CarbonFeed::metrics() const {
  using detail::prometheus_family_header;
  using detail::prometheus_sample;
  const std::string labels =
      fmt::format("provider=\"{}\"", detail::prometheus_label_value(provider_name_));
  std::lock_guard lock(mutex_);
  std::string out;
  if (value_) {
    prometheus_family_header(out, "chase_carbon_intensity_grams_per_kwh", "gauge",
                             "Carbon intensity of the node's grid in gCO2eq/kWh (the last value "
                             "the provider gave).");
    prometheus_sample(out, "chase_carbon_intensity_grams_per_kwh", labels, *value_);
    prometheus_family_header(out, "chase_carbon_intensity_age_seconds", "gauge",
                             "Seconds since the carbon intensity was fetched.");
    prometheus_sample(
        out, "chase_carbon_intensity_age_seconds", labels,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - fetched_at_).count());
  }
  prometheus_family_header(out, "chase_carbon_up", "gauge",
                           "1 when the last refresh of the carbon intensity succeeded, else 0.");
  prometheus_sample(out, "chase_carbon_up", labels, up_ ? 1 : 0);
  prometheus_family_header(out, "chase_carbon_refresh_failures_total", "counter",
                           "Refreshes of the carbon intensity that failed.");
  prometheus_sample(out, "chase_carbon_refresh_failures_total", labels,
                    static_cast<double>(failures_));
  return out;
}

std::unique_ptr<CarbonProvider> make_feed_provider(const std::string& spec,
                                                   const std::string& config_file) {
  if (spec.starts_with("file:")) {
    CarbonProviderOptions options = load_carbon_provider_options("file", config_file);
    options.file = spec.substr(5);
    if (options.file.empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  "--carbon file:PATH: the path is empty; e.g. --carbon file:/etc/chased/grid.csv");
    }
    return make_carbon_provider("file", std::move(options));
  }
  try {
    return make_carbon_provider(spec, load_carbon_provider_options(spec, config_file));
  } catch (const Error& e) {
    throw Error(e.code(), fmt::format("--carbon {}: {}", escape_untrusted(spec, 100), e.what()));
  }
}

}  // namespace chase::server
