// Test helper: the real Pushgateway of Debian's prometheus-pushgateway package on 127.0.0.1 (a
// free port, its persistence file in a temporary directory), and the samples it serves. Tests skip
// when the binary is absent (scripts/install-deps installs it).
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>

#include "support/free_port.h"
#include "support/process.h"

namespace chase::testing {

inline constexpr const char* kPushgatewayBinary = "/usr/bin/prometheus-pushgateway";

class PushgatewayServer {
 public:
  // Starts it and waits until /-/ready answers; started() says whether that happened.
  PushgatewayServer()
      : directory_(std::filesystem::temp_directory_path() /
                   ("chase_pushgateway_" + std::to_string(::getpid()) + "_" +
                    std::to_string(free_port()))),
        port_(free_port()) {
    std::filesystem::create_directories(directory_);
    process_ = std::make_unique<Process>(std::vector<std::string>{
        kPushgatewayBinary, "--web.listen-address=127.0.0.1:" + std::to_string(port_),
        "--persistence.file=" + (directory_ / "pushgateway.data").string(), "--log.level=warn"});
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      const auto reply = client.Get("/-/ready");
      if (reply && reply->status == 200) {
        started_ = true;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  ~PushgatewayServer() {
    process_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
  }
  PushgatewayServer(const PushgatewayServer&) = delete;
  PushgatewayServer& operator=(const PushgatewayServer&) = delete;

  static bool installed() { return std::filesystem::exists(kPushgatewayBinary); }
  bool started() const { return started_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return process_->stderr_so_far().substr(0, 4000); }

  // Its /metrics exposition (empty when it does not answer).
  std::string exposition() const {
    httplib::Client client("127.0.0.1", port_);
    const auto reply = client.Get("/metrics");
    return reply && reply->status == 200 ? reply->body : std::string();
  }

  // The value of the sample `name` whose labels include `job="<job>"`; nullopt when absent.
  std::optional<double> value(const std::string& name, const std::string& job) const {
    const std::regex line("^" + name + "\\{([^}]*)\\} (\\S+)$");
    const std::string text = exposition();
    std::smatch match;
    for (auto begin = text.begin(); begin != text.end();) {
      const auto end = std::find(begin, text.end(), '\n');
      const std::string one(begin, end);
      if (std::regex_match(one, match, line) &&
          match[1].str().find("job=\"" + job + "\"") != std::string::npos) {
        return std::stod(match[2].str());
      }
      begin = end == text.end() ? end : end + 1;
    }
    return std::nullopt;
  }

  // Waits up to `timeout` for value(name, job) to exist.
  std::optional<double> wait_for(const std::string& name, const std::string& job,
                                 std::chrono::milliseconds timeout) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      if (auto found = value(name, job)) return found;
      if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

 private:
  std::filesystem::path directory_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
  bool started_ = false;
};

}  // namespace chase::testing
