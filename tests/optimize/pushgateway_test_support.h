// Test helpers for the Pushgateway reporter: a gateway that never answers, and the options of a
// reporter pushing to a URL.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "chase/pushgateway.h"

namespace chase::testing {

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

inline PushgatewayOptions options_for(const std::string& url) {
  PushgatewayOptions options;
  options.url = url;
  options.job = "unit";
  options.instance = "test-host";
  options.timeout = std::chrono::milliseconds(500);
  return options;
}

}  // namespace chase::testing
