// The Pushgateway reporter without a gateway: push() never blocks on the network, failures are
// counted and logged with the URL, a full queue drops the oldest, bad options are clear errors;
// the training controller's on_period_end hook and the run's exposition. The pushes to a real
// Pushgateway are in pushgateway_real_test.cpp.
#include "chase/pushgateway.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "chase/error.h"
#include "chase/training.h"
#include "optimize/simulated_training_job.h"
#include "support/free_port.h"
#include "support/log_capture.h"

namespace chase::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A TCP listener that never accepts: a client connects (the kernel queues it) and then waits for
// an answer that never comes, as with a hung gateway.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 64);
    socklen_t size = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size);
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

PushgatewayOptions options_for(const std::string& url) {
  PushgatewayOptions options;
  options.url = url;
  options.job = "unit";
  options.instance = "test-host";
  options.timeout = 500ms;
  return options;
}

TEST(PushgatewayReporter, ARefusedPushIsCountedAndLoggedWithTheUrlAndNeverThrows) {
  LogCapture log;
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port());  // nobody listens
  {
    PushgatewayReporter reporter(options_for(url));
    EXPECT_EQ(reporter.group_url(), url + "/metrics/job/unit/instance/test-host");
    reporter.push("a_metric 1\n");
    reporter.push("a_metric 2\n");
    EXPECT_TRUE(reporter.flush(5s));
    EXPECT_EQ(reporter.pushes_failed(), 2u);
    EXPECT_EQ(reporter.pushes_succeeded(), 0u);
  }
  const std::string text = log.text();
  EXPECT_THAT(text, HasSubstr("PUT " + url + "/metrics/job/unit/instance/test-host failed"));
  EXPECT_THAT(text, HasSubstr("curl " + url + "/-/healthy"));
  // Logged when failures start, not at every failed push.
  const auto first = text.find("The job goes on");
  ASSERT_NE(first, std::string::npos) << text;
  EXPECT_EQ(text.find("The job goes on", first + 1), std::string::npos) << text;
}

TEST(PushgatewayReporter, PushNeverWaitsForAHungGatewayAndAFullQueueDropsTheOldest) {
  SilentListener hung;
  auto options = options_for(hung.url());
  options.queue_capacity = 3;
  options.timeout = 1s;
  const auto start = std::chrono::steady_clock::now();
  {
    PushgatewayReporter reporter(options);
    for (int i = 0; i < 20; ++i) reporter.push("a_metric " + std::to_string(i) + "\n");
    EXPECT_LT(std::chrono::steady_clock::now() - start, 200ms);
    // One push is in flight (hung), three wait, the other 16 were superseded.
    EXPECT_GE(reporter.pushes_dropped(), 16u);
    EXPECT_LE(reporter.pushes_dropped(), 17u);
  }
  // The destructor gave up after about the timeout (plus the push in flight), not 20 timeouts.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
}

TEST(PushgatewayReporter, BadOptionsAreClearErrors) {
  auto bad_url = options_for("127.0.0.1:9091");
  EXPECT_THROW(
      {
        try {
          PushgatewayReporter reporter(bad_url);
        } catch (const Error& e) {
          EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
          EXPECT_THAT(e.what(), HasSubstr("expected http://HOST:PORT"));
          throw;
        }
      },
      Error);
  auto no_job = options_for("http://127.0.0.1:9091");
  no_job.job.clear();
  EXPECT_THROW(PushgatewayReporter{no_job}, Error);
  auto no_queue = options_for("http://127.0.0.1:9091");
  no_queue.queue_capacity = 0;
  EXPECT_THROW(PushgatewayReporter{no_queue}, Error);
}

TEST(PushgatewayReporter, GroupingValuesWithASlashAreSentInBase64AndOthersPercentEncoded) {
  auto options = options_for("http://127.0.0.1:1/prefix/");
  options.job = "team/a";
  options.instance = "node 1";
  PushgatewayReporter reporter(options);
  // base64url("team/a") = dGVhbS9h
  EXPECT_EQ(reporter.group_url(),
            "http://127.0.0.1:1/prefix/metrics/job@base64/dGVhbS9h/instance/node%201");
}

TEST(PushgatewayReporter, TheInstanceDefaultsToTheHostName) {
  auto options = options_for("http://127.0.0.1:1");
  options.instance.clear();
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  PushgatewayReporter reporter(options);
  EXPECT_THAT(reporter.group_url(), HasSubstr(std::string("/instance/") + host));
}

TEST(TrainingRunMetrics, TotalsAndTheLastPeriodInPrometheusNames) {
  RunReport report;
  report.policy = "chase";
  PeriodReport first;
  first.energy_j = 1000;
  first.carbon_intensity = 100;
  first.carbon_g = 2;
  first.limits_w = {300};
  PeriodReport second;
  second.energy_j = 500;
  second.time_s = 1800;
  second.steps = 7;
  second.carbon_intensity = std::nan("");
  second.carbon_g = std::nan("");
  second.limits_w = {300, 175};
  second.limit_errors = {"refused"};
  report.periods = {first, second};
  report.energy_j = 1500;
  report.carbon_g = 2;
  const std::string text = training_run_metrics(report, true);
  EXPECT_THAT(text, HasSubstr("# TYPE chase_training_energy_joules_total counter\n"
                              "chase_training_energy_joules_total{policy=\"chase\"} 1500\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_running{policy=\"chase\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_periods_total{policy=\"chase\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_period_energy_joules{policy=\"chase\"} 500\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_power_limit_watts{policy=\"chase\"} 175\n"));
  EXPECT_THAT(text, HasSubstr("chase_training_limit_errors_total{policy=\"chase\"} 1\n"));
  // No intensity in the last period: its carbon series are left out, not pushed as NaN.
  EXPECT_THAT(text, ::testing::Not(HasSubstr("chase_training_period_carbon")));
  EXPECT_THAT(training_run_metrics(report, false),
              HasSubstr("chase_training_running{policy=\"chase\"} 0\n"));
}

TEST(TrainingController, OnPeriodEndHearsOfEveryPeriodAndAThrowingHookNeverStopsTraining) {
  LogCapture log;
  SimulatedTrainingJob job;
  auto options = job.options();
  std::vector<std::size_t> periods_seen;
  std::vector<double> energies;
  options.on_period_end = [&](const RunReport& so_far) {
    periods_seen.push_back(so_far.periods.size());
    energies.push_back(so_far.periods.back().energy_j);
    throw std::runtime_error("hook failure");
  };
  TrainingController controller(job.gpus, options);
  controller.on_train_begin();
  job.train_for(controller, 75min);  // two periods close, the third is open
  EXPECT_EQ(periods_seen, (std::vector<std::size_t>{1, 2}));
  controller.on_train_end();  // closes the third
  ASSERT_EQ(periods_seen, (std::vector<std::size_t>{1, 2, 3}));
  const auto report = controller.report();
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(energies[i], report.periods[i].energy_j);
  EXPECT_THAT(log.text(), HasSubstr("on_period_end hook threw (hook failure); training goes on"));
}

TEST(TrainingController, AnUnreachablePushgatewayNeverHoldsTheLoop) {
  SilentListener hung;
  SimulatedTrainingJob job;
  auto options = job.options();
  options.pushgateway = options_for(hung.url());
  options.pushgateway->timeout = 1s;
  const auto start = std::chrono::steady_clock::now();
  {
    TrainingController controller(job.gpus, options);
    controller.on_train_begin();
    job.train_for(controller, 3h);  // six periods, six pushes queued behind a hung one
    controller.on_train_end();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
    EXPECT_GE(controller.report().periods.size(), 6u);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
}  // namespace chase::testing
