// chase/pushgateway.h — pushing a job's metrics to a Prometheus Pushgateway, as Zeus does, for jobs
// too short-lived (or too far behind a firewall) to be scraped.
//
// Contract: a PushgatewayReporter sends each exposition given to push() (Prometheus text format
// 0.0.4) with HTTP PUT to <url>/metrics/job/<job>/instance/<instance>, which replaces everything
// the group held: every push is the job's whole state, so a push that fails or is dropped is made
// good by the next one. Pushes are made by a background thread; push() only queues and never
// blocks on the network nor throws for a network failure. The queue holds at most
// `queue_capacity` expositions: when full, the oldest waiting one is dropped (a newer state
// supersedes it) and counted. A failed push (no answer within `timeout`, a status other than
// 2xx) is logged with spdlog, naming the URL and what to do — once when failures start and once
// when pushes succeed again, so a missing gateway does not flood the log — and never retried on
// its own. The destructor waits at most `timeout` for the pushes still queued (the final one
// included), then stops the thread: a job's end is delayed by at most that much when the gateway
// is unreachable. A job or instance holding '/' is sent base64url-encoded (the Pushgateway's
// "@base64" form); any other character is percent-encoded.
// Bad options (empty or non-http(s) URL, empty job, zero queue or timeout) throw
// kInvalidArgument at construction.
//
// training_run_metrics() is what a TrainingController with TrainingOptions::pushgateway pushes
// after every period and once more at on_train_end(); its names are listed in docs/DAEMON.md
// ("Pushgateway").
//
// Thread safety: push(), flush() and the counters may be called from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace chase {

struct RunReport;

struct PushgatewayOptions {
  std::string url;            // the Pushgateway, e.g. http://127.0.0.1:9091 (a path prefix is kept)
  std::string job = "chase";  // the `job` grouping label
  std::string instance;       // the `instance` grouping label; empty: this machine's host name
  std::size_t queue_capacity = 16;          // expositions waiting to be pushed, at most
  std::chrono::milliseconds timeout{5000};  // one push; and the destructor's wait for the queue
};

class PushgatewayReporter {
 public:
  explicit PushgatewayReporter(PushgatewayOptions options);
  ~PushgatewayReporter();
  PushgatewayReporter(const PushgatewayReporter&) = delete;
  PushgatewayReporter& operator=(const PushgatewayReporter&) = delete;

  // Queues `exposition` for a push; returns at once.
  void push(std::string exposition);
  // Waits up to `wait` until nothing is queued or being pushed; true when so.
  bool flush(std::chrono::milliseconds wait);

  // Where the pushes go: <url>/metrics/job/<job>/instance/<instance>.
  const std::string& group_url() const noexcept;
  std::size_t pushes_succeeded() const;
  std::size_t pushes_failed() const;
  std::size_t pushes_dropped() const;  // superseded in a full queue

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The run's metrics as an exposition (label policy="<the report's policy>"): totals over the
// periods so far, the last period's energy, carbon, intensity, duration, steps and limit, and
// chase_training_running (1 while training, 0 in the final push).
std::string training_run_metrics(const RunReport& report, bool running);

}  // namespace chase
