// The GPU backend that goes through chased (contract: chase/daemon_client.h).
#include "chase/daemon_client.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "common/text.h"
#include "server/daemon_tcp_client.h"
#include "server/http_message.h"

namespace chase {
namespace {

using json = nlohmann::json;
constexpr std::size_t kMaxReplyBytes = 4 * 1024 * 1024;  // a GPU list of thousands fits

ErrorCode code_from_reply(int status, const std::string& name) {
  for (auto code :
       {ErrorCode::kInvalidArgument, ErrorCode::kNotFound, ErrorCode::kAlreadyExists,
        ErrorCode::kUnavailable, ErrorCode::kPermissionDenied, ErrorCode::kNotSupported,
        ErrorCode::kDeviceLost, ErrorCode::kParse, ErrorCode::kIo, ErrorCode::kInternal}) {
    if (to_string(code) == name) return code;
  }
  if (status == 401 || status == 403) return ErrorCode::kPermissionDenied;
  if (status == 404) return ErrorCode::kNotFound;
  if (status == 503) return ErrorCode::kUnavailable;
  return status < 500 ? ErrorCode::kInvalidArgument : ErrorCode::kInternal;
}

GpuState parse_state(const std::string& name) {
  for (auto state : {GpuState::kHealthy, GpuState::kLost, GpuState::kFailed,
                     GpuState::kNotAccessible, GpuState::kUnmeasurable, GpuState::kMigSlice}) {
    if (to_string(state) == name) return state;
  }
  return GpuState::kFailed;
}

GpuInfo parse_gpu(const json& entry) {
  GpuInfo gpu;
  gpu.index = entry.at("index").get<std::size_t>();
  gpu.hardware_index = entry.value("hardware_index", 0u);
  gpu.uuid = entry.at("uuid").get<std::string>();
  gpu.name = entry.value("name", std::string());
  gpu.architecture = parse_gpu_architecture(entry.value("architecture", std::string()));
  gpu.pci_bus_id = entry.value("pci_bus_id", std::string());
  gpu.state = parse_state(entry.value("state", std::string("healthy")));
  gpu.problem = entry.value("problem", std::string());
  gpu.note = entry.value("note", std::string());
  gpu.has_energy_counter = entry.value("has_energy_counter", false);
  gpu.has_power_reading = entry.value("has_power_reading", true);
  gpu.power_reading = entry.value("power_reading", std::string()) == "1s-average"
                          ? PowerReading::kAveraged
                          : PowerReading::kInstant;
  const json& constraints = entry.at("constraints");
  gpu.min_power_limit_w = constraints.at("min_power_limit_w").get<double>();
  gpu.max_power_limit_w = constraints.at("max_power_limit_w").get<double>();
  gpu.default_power_limit_w = constraints.at("default_power_limit_w").get<double>();
  return gpu;
}

class DaemonGpuBackend final : public GpuBackend {
 public:
  DaemonGpuBackend(const std::string& address, std::optional<std::string> token)
      : address_(address) {
    if (address.starts_with("tcp://")) {
      token_ = token ? *token : server::daemon_token_from_environment(address);
      fd_ = server::connect_daemon_tcp(address);
    } else {
      connect_unix(parse_address(address));
    }
    try {
      for (const auto& entry : request("GET", "/gpus", "")) gpus_.push_back(parse_gpu(entry));
    } catch (const json::exception& e) {
      throw Error(ErrorCode::kParse,
                  fmt::format("chased at {} answered /gpus with an unexpected list: {}", address_,
                              e.what()));
    }
  }
  ~DaemonGpuBackend() override { ::close(fd_); }  // closing ends this backend's leases

  std::string_view backend_name() const noexcept override { return "chased"; }
  const std::vector<GpuInfo>& gpus() const noexcept override { return gpus_; }

  double energy_j(std::size_t gpu) override {
    return number(fmt::format("/gpus/{}/energy", checked(gpu)), "energy_j");
  }
  double power_w(std::size_t gpu) override {
    return number(fmt::format("/gpus/{}/power", checked(gpu)), "power_w");
  }
  double power_limit_w(std::size_t gpu) override {
    return number(fmt::format("/gpus/{}/power_limit", checked(gpu)), "power_limit_w");
  }
  void set_power_limit_w(std::size_t gpu, double watts) override {
    check_power_limit(gpus_[checked(gpu)], watts);
    request("POST", fmt::format("/gpus/{}/power_limit", gpu),
            json{{"power_limit_w", watts}}.dump());
  }
  bool limits_outlive_process() const noexcept override { return false; }

 private:
  static std::string parse_address(const std::string& address) {
    if (address.starts_with("unix:") && address.size() > 5) return address.substr(5);
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("CHASE_DAEMON '{}': expected unix:/path/to/chased.sock or "
                            "tcp://HOST:PORT",
                            escape_untrusted(address, 200)));
  }

  void connect_unix(const std::string& path) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.size() >= sizeof address.sun_path) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("CHASE_DAEMON: the socket path '{}' is too long", path));
    }
    std::memcpy(address.sun_path, path.c_str(), path.size());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 ||
        ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      const int error = errno;
      throw Error(error == EACCES ? ErrorCode::kPermissionDenied : ErrorCode::kUnavailable,
                  fmt::format("cannot reach chased at {} ({}): {}", address_, std::strerror(error),
                              error == EACCES ? "ask an administrator to add you to the socket's "
                                                "group"
                                              : "is chased running? (systemctl status chased)"));
    }
  }

  std::size_t checked(std::size_t gpu) const {
    checked_gpu(gpus_, gpu);
    return gpu;
  }

  double number(const std::string& target, const char* field) {
    const json reply = request("GET", target, "");
    if (!reply.contains(field) || !reply[field].is_number()) {
      throw Error(ErrorCode::kParse, fmt::format("chased at {} answered {} without a number '{}'",
                                                 address_, target, field));
    }
    return reply[field].get<double>();
  }

  [[noreturn]] void broken(const std::string& why) {
    broken_ = why;
    throw Error(ErrorCode::kUnavailable,
                fmt::format("the connection to chased at {} broke ({}); the daemon has restored "
                            "any limit set through it",
                            address_, why));
  }

  json request(std::string_view method, const std::string& target, const std::string& body) {
    std::lock_guard lock(mutex_);
    if (!broken_.empty()) broken(broken_);
    const std::string message =
        token_.empty()
            ? server::format_request(method, target, body)
            : server::format_request(method, target, body, {{"Authorization", "Bearer " + token_}});
    for (std::size_t sent = 0; sent < message.size();) {
      const auto n = ::send(fd_, message.data() + sent, message.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) broken(std::strerror(errno));
      sent += static_cast<std::size_t>(n);
    }
    server::HttpParser parser(server::HttpParser::Mode::kResponse, kMaxReplyBytes);
    std::array<char, 16384> buffer{};
    while (true) {
      if (auto reply = parser.next()) return decode(*reply, target);
      if (const auto& error = parser.error()) broken("malformed reply: " + error->message);
      const auto got = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) broken(got == 0 ? "the daemon closed it" : std::strerror(errno));
      parser.feed(std::string_view(buffer.data(), static_cast<std::size_t>(got)));
    }
  }

  json decode(const server::HttpMessage& reply, const std::string& target) {
    json body = json::parse(reply.body, nullptr, false);
    if (reply.status == 200 && !body.is_discarded()) return body;
    std::string message = fmt::format("HTTP {} for {}", reply.status, target);
    std::string code;
    if (body.is_object() && body.contains("error") && body["error"].is_string()) {
      message = body["error"].get<std::string>();
      if (body.contains("code") && body["code"].is_string()) code = body["code"].get<std::string>();
    }
    if (!reply.keep_alive()) broken_ = "the daemon closed it after an error";
    throw Error(code_from_reply(reply.status, code), "chased: " + message);
  }

  std::string address_;
  std::string token_;  // tcp:// only: the bearer token sent with every request
  int fd_ = -1;
  std::mutex mutex_;
  std::string broken_;
  std::vector<GpuInfo> gpus_;
};

}  // namespace

std::shared_ptr<GpuBackend> open_daemon_gpus(const std::string& address,
                                             std::optional<std::string> token) {
  return std::make_shared<DaemonGpuBackend>(address, std::move(token));
}

std::optional<std::string> daemon_address_from_environment() {
  const char* value = std::getenv("CHASE_DAEMON");
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

}  // namespace chase
