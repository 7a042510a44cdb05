// chased's /metrics against the real Prometheus of Debian's prometheus package: a Prometheus on
// 127.0.0.1 (free port, temporary config and storage) scrapes chased, and its query API must
// return chase_gpu_power_watts for every fake GPU; promtool must accept the exposition.
// ctest label real_server; skipped when /usr/bin/prometheus or promtool is absent.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "server/chased_fixture.h"
#include "support/free_port.h"

namespace chase::testing {
namespace {

using namespace std::chrono_literals;
constexpr const char* kPrometheus = "/usr/bin/prometheus";
constexpr const char* kPromtool = "/usr/bin/promtool";

std::string scrape(int port) {
  httplib::Client client("127.0.0.1", port);
  const auto reply = client.Get("/metrics");
  return reply && reply->status == 200 ? reply->body : std::string();
}

TEST(ChasedPrometheus, PromtoolAcceptsTheExposition) {
  if (!std::filesystem::exists(kPromtool)) GTEST_SKIP() << kPromtool << " is not installed";
  ChasedDaemon daemon(8);
  ASSERT_GT(daemon.metrics_port(), 0);
  const std::string text = scrape(daemon.metrics_port());
  ASSERT_NE(text.find("chase_gpu_power_watts{index=\"7\""), std::string::npos) << text;
  const auto file = daemon.env().directory() / "metrics.txt";
  std::ofstream(file) << text;
  const auto result = run_process(
      {"/bin/sh", "-c", std::string(kPromtool) + " check metrics < " + file.string()}, 30s);
  EXPECT_EQ(result.exit_code, 0) << result.out << result.err;
}

TEST(ChasedPrometheus, ARealPrometheusScrapesEveryGpu) {
  if (!std::filesystem::exists(kPrometheus)) GTEST_SKIP() << kPrometheus << " is not installed";
  constexpr std::size_t kGpus = 4;
  ChasedDaemon daemon(kGpus);
  ASSERT_GT(daemon.metrics_port(), 0);
  const auto directory = daemon.env().directory();
  std::ofstream(directory / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      << "scrape_configs:\n  - job_name: chased\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << daemon.metrics_port() << "']\n";
  const int port = free_port();
  Process prometheus({kPrometheus, "--config.file=" + (directory / "prometheus.yml").string(),
                      "--storage.tsdb.path=" + (directory / "tsdb").string(),
                      "--web.listen-address=127.0.0.1:" + std::to_string(port)});
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  nlohmann::json series;
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto reply = client.Get("/api/v1/query?query=chase_gpu_power_watts");
    if (reply && reply->status == 200) {
      const auto body = nlohmann::json::parse(reply->body, nullptr, false);
      if (!body.is_discarded() && body["data"]["result"].size() == kGpus) {
        series = body["data"]["result"];
        break;
      }
    }
    std::this_thread::sleep_for(250ms);
  }
  ASSERT_EQ(series.size(), kGpus) << "Prometheus did not get every GPU; its log:\n"
                                  << prometheus.stderr_so_far().substr(0, 4000);
  std::set<std::string> uuids;
  for (const auto& sample : series) {
    EXPECT_EQ(sample["metric"]["job"], "chased");
    EXPECT_EQ(sample["value"][1], "155");  // the fake's 30 W idle + 0.5 x 250 W
    uuids.insert(sample["metric"]["uuid"].get<std::string>());
  }
  for (std::size_t i = 0; i < kGpus; ++i) {
    EXPECT_TRUE(uuids.contains(FakeNvmlEnvironment::standard_uuid(i))) << i;
  }
  const auto up = client.Get("/api/v1/query?query=up%7Bjob%3D%22chased%22%7D");
  ASSERT_TRUE(up);
  EXPECT_NE(up->body.find("\"1\""), std::string::npos) << up->body;
}

}  // namespace
}  // namespace chase::testing
