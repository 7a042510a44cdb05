// The Pushgateway reporter without a gateway: push() never blocks on the network, failures are
// counted and logged with the URL, a full queue drops the oldest, bad options are clear errors.
// Also run under ThreadSanitizer (chase_tsan_tests): pushes come from the caller's thread while
// the reporter's own thread sends them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "chase/error.h"
#include "chase/pushgateway.h"
#include "optimize/pushgateway_test_support.h"
#include "support/free_port.h"
#include "support/log_capture.h"

namespace chase::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

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

}  // namespace
}  // namespace chase::testing
