// Pushes to a Prometheus Pushgateway from a background thread (contract: chase/pushgateway.h).
#include "chase/pushgateway.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "carbon/http_client.h"
#include "chase/error.h"
#include "chase/training.h"
#include "common/prometheus_text.h"
#include "common/text.h"

namespace chase {
namespace {

std::string host_name() {
  std::array<char, HOST_NAME_MAX + 1> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "unknown";
  return name.data();
}

// The Pushgateway's URL-safe base64 (RFC 4648 §5, with padding).
std::string base64url(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    std::uint32_t chunk = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      chunk = (chunk << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0U);
    }
    for (std::size_t k = 0; k < 4; ++k) {
      out += k <= n ? kAlphabet[(chunk >> (18 - 6 * k)) & 0x3F] : '=';
    }
  }
  return out;
}

// "name/value", or "name@base64/..." for a value that holds '/' (percent-encoding would not do:
// the gateway splits the path before decoding it).
std::string grouping_segment(std::string_view name, std::string_view value) {
  if (value.find('/') != std::string_view::npos) {
    return fmt::format("{}@base64/{}", name, base64url(value));
  }
  return fmt::format("{}/{}", name, detail::url_encode(value));
}

PushgatewayOptions checked(PushgatewayOptions options) {
  auto url = std::string_view(options.url);
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("pushgateway URL '{}': expected http://HOST:PORT (e.g. "
                            "http://127.0.0.1:9091)",
                            escape_untrusted(options.url, 200)));
  }
  if (options.job.empty()) {
    throw Error(ErrorCode::kInvalidArgument,
                "pushgateway job name is empty; give one (e.g. the training job's name)");
  }
  if (options.queue_capacity == 0 || options.timeout.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "pushgateway: the queue capacity and the timeout must be positive");
  }
  while (options.url.ends_with('/')) options.url.pop_back();
  if (options.instance.empty()) options.instance = host_name();
  return options;
}

detail::HttpOptions http_options(const PushgatewayOptions& options) {
  detail::HttpOptions http;
  http.connect_timeout = std::min(options.timeout, std::chrono::milliseconds(2000));
  http.timeout = options.timeout;
  http.retry.max_attempts = 1;  // the next push carries the whole state again
  http.max_body_bytes = 1 << 20;
  return http;
}

}  // namespace

class PushgatewayReporter::Impl {
 public:
  explicit Impl(PushgatewayOptions options)
      : options_(checked(std::move(options))),
        group_url_(fmt::format("{}/metrics/{}/{}", options_.url,
                               grouping_segment("job", options_.job),
                               grouping_segment("instance", options_.instance))),
        client_("pushgateway", http_options(options_)),
        worker_([this] { run(); }) {}

  ~Impl() {
    if (!flush(options_.timeout)) {
      spdlog::warn(
          "pushgateway: {} push(es) to {} still waiting after {} ms at the end; they are "
          "dropped. Check that the Pushgateway answers (curl {}/-/healthy)",
          queue_size(), group_url_, options_.timeout.count(), options_.url);
    }
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    worker_.join();
  }

  void push(std::string exposition) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= options_.queue_capacity) {
        queue_.pop_front();
        ++dropped_;
      }
      queue_.push_back(std::move(exposition));
    }
    changed_.notify_all();
  }

  bool flush(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, wait, [this] { return queue_.empty() && !in_flight_; });
  }

  const std::string& group_url() const noexcept { return group_url_; }
  std::size_t succeeded() const { return locked(succeeded_); }
  std::size_t failed() const { return locked(failed_); }
  std::size_t dropped() const { return locked(dropped_); }

 private:
  std::size_t locked(const std::size_t& counter) const {
    std::lock_guard lock(mutex_);
    return counter;
  }
  std::size_t queue_size() const {
    std::lock_guard lock(mutex_);
    return queue_.size();
  }

  void run() {
    std::unique_lock lock(mutex_);
    while (true) {
      changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      std::string body = std::move(queue_.front());
      queue_.pop_front();
      in_flight_ = true;
      lock.unlock();
      const auto problem = send(body);
      lock.lock();
      in_flight_ = false;
      note_outcome(problem);
      changed_.notify_all();
    }
  }

  // The failure, described; empty when the gateway took it.
  std::string send(const std::string& body) const {
    detail::HttpRequest request;
    request.url = group_url_;
    request.headers = {{"Content-Type", "text/plain; version=0.0.4"}};
    try {
      const auto response = client_.send(request, detail::HttpPayload{"PUT", body});
      if (response.status >= 200 && response.status < 300) return {};
      return fmt::format("pushgateway: PUT {} failed: HTTP {}: {}", group_url_, response.status,
                         escape_untrusted(response.body, 300));
    } catch (const std::exception& e) {
      std::string message = e.what();  // names the method, the URL and the transport error
      while (message.ends_with('.')) message.pop_back();
      return message;
    }
  }

  // Logs when failures start and when they end (called with the mutex held).
  void note_outcome(const std::string& problem) {
    if (problem.empty()) {
      ++succeeded_;
      if (failing_ > 0) {
        spdlog::info("pushgateway: pushes to {} succeed again (after {} failed)", group_url_,
                     failing_);
      }
      failing_ = 0;
      return;
    }
    ++failed_;
    if (failing_++ == 0) {
      spdlog::warn(
          "{}. The job goes on and later pushes try again; check that a Pushgateway runs there "
          "(curl {}/-/healthy) or leave the pushgateway option out",
          problem, options_.url);
    }
  }

  const PushgatewayOptions options_;
  const std::string group_url_;
  const detail::HttpClient client_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::string> queue_;
  bool in_flight_ = false;
  bool stopping_ = false;
  std::size_t succeeded_ = 0;
  std::size_t failed_ = 0;
  std::size_t dropped_ = 0;
  std::size_t failing_ = 0;  // consecutive failures
  std::thread worker_;       // last: started once everything above exists
};

PushgatewayReporter::PushgatewayReporter(PushgatewayOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
PushgatewayReporter::~PushgatewayReporter() = default;
void PushgatewayReporter::push(std::string exposition) { impl_->push(std::move(exposition)); }
bool PushgatewayReporter::flush(std::chrono::milliseconds wait) { return impl_->flush(wait); }
const std::string& PushgatewayReporter::group_url() const noexcept { return impl_->group_url(); }
std::size_t PushgatewayReporter::pushes_succeeded() const { return impl_->succeeded(); }
std::size_t PushgatewayReporter::pushes_failed() const { return impl_->failed(); }
std::size_t PushgatewayReporter::pushes_dropped() const { return impl_->dropped(); }

std::string training_run_metrics(const RunReport& report, bool running) {
  using detail::prometheus_family_header;
  using detail::prometheus_sample;
  const std::string labels =
      fmt::format("policy=\"{}\"", detail::prometheus_label_value(report.policy));
  std::string out;
  const auto family = [&](std::string_view name, std::string_view type, std::string_view help,
                          double value) {
    prometheus_family_header(out, name, type, help);
    prometheus_sample(out, name, labels, value);
  };
  family("chase_training_running", "gauge", "1 while the job trains, 0 once it has ended.",
         running ? 1 : 0);
  family("chase_training_periods_total", "counter", "Control periods the job has completed.",
         static_cast<double>(report.periods.size()));
  family("chase_training_steps_total", "counter", "Training steps in the completed periods.",
         static_cast<double>(report.steps));
  family("chase_training_time_seconds_total", "counter",
         "Wall time of the completed periods in seconds.", report.time_s);
  family("chase_training_energy_joules_total", "counter",
         "Energy of the job's GPUs in joules over the completed periods.", report.energy_j);
  family("chase_training_carbon_grams_total", "counter",
         "Emissions in grams of CO2-equivalent over the periods with a carbon intensity.",
         report.carbon_g);
  family("chase_training_paused_seconds_total", "counter",
         "Time the loop was held by an idle pause (deadline mode), in seconds.", report.paused_s);
  if (report.periods.empty()) return out;
  const PeriodReport& last = report.periods.back();
  std::size_t limit_errors = 0;
  for (const auto& period : report.periods) limit_errors += period.limit_errors.size();
  family("chase_training_limit_errors_total", "counter",
         "Power limit changes the GPUs refused (the job went on at the limit in force).",
         static_cast<double>(limit_errors));
  family("chase_training_period_energy_joules", "gauge",
         "Energy of the job's GPUs in joules during the last completed period.", last.energy_j);
  family("chase_training_period_duration_seconds", "gauge",
         "Wall time of the last completed period in seconds.", last.time_s);
  family("chase_training_period_steps", "gauge", "Training steps in the last completed period.",
         static_cast<double>(last.steps));
  family("chase_training_period_end_timestamp_seconds", "gauge",
         "When the last completed period ended, in seconds since the Unix epoch.",
         std::chrono::duration<double>(last.end.time_since_epoch()).count());
  if (!last.limits_w.empty()) {
    family("chase_training_power_limit_watts", "gauge",
           "The GPUs' power limit at the end of the last completed period, in watts.",
           last.limits_w.back());
  }
  // Left out without data rather than pushed as NaN, so that a query sees no value, not a NaN.
  if (std::isfinite(last.carbon_intensity)) {
    family("chase_training_period_carbon_intensity_grams_per_kwh", "gauge",
           "Carbon intensity the signal gave for the last completed period, in gCO2eq/kWh.",
           last.carbon_intensity);
    family("chase_training_period_carbon_grams", "gauge",
           "Emissions of the last completed period in grams of CO2-equivalent.", last.carbon_g);
  }
  return out;
}

}  // namespace chase
