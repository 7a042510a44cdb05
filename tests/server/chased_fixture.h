// Test helpers for chased: start the daemon over the fake NVML (a temporary socket, state
// directory and metrics port), talk raw HTTP to its Unix socket or TCP address, and wait for a
// GPU's limit.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/fake_nvml_env.h"
#include "support/process.h"

#ifndef CHASED_PATH
#error "CHASED_PATH must name the chased binary (tests/CMakeLists.txt defines it)"
#endif

namespace chase::testing {

// A connected socket speaking raw HTTP/1.1; closing it (destruction) is a client going away.
class RawHttpConnection {
 public:
  ~RawHttpConnection() { close(); }
  RawHttpConnection(const RawHttpConnection&) = delete;
  RawHttpConnection& operator=(const RawHttpConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void send_raw(const std::string& bytes) {
    [[maybe_unused]] auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  // Reads one response (head + Content-Length body); empty on timeout or close.
  std::string read_response() {
    std::string data;
    char buffer[4096];
    while (true) {
      const auto head_end = data.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::smatch match;
        const std::string head = data.substr(0, head_end);
        std::size_t length = 0;
        if (std::regex_search(head, match, std::regex("Content-Length: (\\d+)"))) {
          length = std::stoul(match[1]);
        }
        if (data.size() >= head_end + 4 + length) return data.substr(0, head_end + 4 + length);
      }
      const auto got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got <= 0) return data;
      data.append(buffer, static_cast<std::size_t>(got));
    }
  }
  std::string request(const std::string& method, const std::string& target,
                      const std::string& body = "") {
    return request_with_headers(method, target, "", body);
  }

 protected:
  // Connects `fd` to `address` (closing it on failure) and gives reads a 5 s timeout.
  RawHttpConnection(int fd, const sockaddr* address, socklen_t size) : fd_(fd) {
    if (::connect(fd_, address, size) != 0) close();
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }
  // `headers`: whole header lines, each ending in CRLF.
  std::string request_with_headers(const std::string& method, const std::string& target,
                                   const std::string& headers, const std::string& body) {
    std::string message = method + " " + target + " HTTP/1.1\r\nHost: t\r\n" + headers;
    if (!body.empty() || method == "POST") {
      message += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    send_raw(message + "\r\n" + body);
    return read_response();
  }

 private:
  int fd_ = -1;
};

inline sockaddr_un unix_address(const std::filesystem::path& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  return address;
}

// The daemon's Unix socket.
class UnixConnection : public RawHttpConnection {
 public:
  explicit UnixConnection(const std::filesystem::path& path) : UnixConnection(unix_address(path)) {}

 private:
  explicit UnixConnection(const sockaddr_un& address)
      : RawHttpConnection(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0),
                          reinterpret_cast<const sockaddr*>(&address), sizeof address) {}
};

inline sockaddr_in loopback_address(int port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

// 127.0.0.1:port (chased --listen), where every request carries a bearer token.
class TcpConnection : public RawHttpConnection {
 public:
  explicit TcpConnection(int port) : TcpConnection(loopback_address(port)) {}

  // One request with "Authorization: Bearer <token>" (none when `token` is empty).
  std::string request(const std::string& method, const std::string& target,
                      const std::string& token, const std::string& body = "") {
    return request_with_headers(
        method, target, token.empty() ? "" : "Authorization: Bearer " + token + "\r\n", body);
  }

 private:
  explicit TcpConnection(const sockaddr_in& address)
      : RawHttpConnection(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
                          reinterpret_cast<const sockaddr*>(&address), sizeof address) {}
};

inline int status_of(const std::string& response) {
  return response.size() > 12 ? std::atoi(response.substr(9, 3).c_str()) : 0;
}

// chased over the fake NVML (4 standard GPUs, limits 100-300 W, all at 300 W).
class ChasedDaemon {
 public:
  explicit ChasedDaemon(std::size_t gpus = 4, std::vector<std::string> extra = {})
      : env_(FakeNvmlEnvironment::standard_config(gpus)), extra_(std::move(extra)) {
    start();
  }

  void start(const std::vector<std::string>& more = {}) {
    std::vector<std::string> argv = {CHASED_PATH,
                                     "--socket",
                                     socket_path().string(),
                                     "--state-dir",
                                     (env_.directory() / "chased-state").string(),
                                     "--metrics-listen",
                                     "127.0.0.1:0"};
    bool control_given = false;
    for (const auto& list : {extra_, more}) {
      for (const auto& arg : list) {
        control_given = control_given || arg == "--allow-control-gpus";
        argv.push_back(arg);
      }
    }
    if (!control_given) {
      argv.push_back("--allow-control-gpus");
      argv.push_back("uid:" + std::to_string(::getuid()));
    }
    process_ = std::make_unique<Process>(argv);
    if (!process_->wait_for_output("chased: ready", std::chrono::seconds(20))) {
      ADD_FAILURE() << "chased did not start: " << process_->stderr_so_far()
                    << process_->stdout_so_far();
      return;
    }
    std::smatch match;
    const std::string out = process_->stdout_so_far();
    if (std::regex_search(out, match, std::regex("metrics on 127\\.0\\.0\\.1:(\\d+)"))) {
      metrics_port_ = std::stoi(match[1]);
    }
  }

  Process& process() { return *process_; }
  void forget_process() { process_.reset(); }  // kills it (SIGKILL) if still running
  FakeNvmlEnvironment& env() { return env_; }
  std::filesystem::path socket_path() const { return env_.directory() / "chased.sock"; }
  std::string address() const { return "unix:" + socket_path().string(); }
  int metrics_port() const { return metrics_port_; }

  // The limit the fake NVML last recorded for GPU `gpu` (300 W before any change).
  double limit_w(std::size_t gpu) const {
    const auto limits = env_.limits_in_state_file();
    const auto found = limits.find(FakeNvmlEnvironment::standard_uuid(gpu));
    return found == limits.end() ? 300.0 : found->second;
  }
  // Waits until GPU `gpu` is at `watts`; returns how long it took, or nullopt after `timeout`.
  std::optional<std::chrono::milliseconds> wait_for_limit(std::size_t gpu, double watts,
                                                          std::chrono::milliseconds timeout) const {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < timeout) {
      if (limit_w(gpu) == watts) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }

 private:
  FakeNvmlEnvironment env_;
  std::vector<std::string> extra_;
  std::unique_ptr<Process> process_;
  int metrics_port_ = 0;
};

}  // namespace chase::testing
