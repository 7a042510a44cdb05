// The chase run ↔ script socket (contract: store/run_socket.h).
#include "store/run_socket.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "chase/error.h"
#include "store/http_store.h"

namespace chase::store {
namespace {

// A script that connects and says nothing must not hold chase run up.
constexpr int kIoTimeoutMs = 10'000;

sockaddr_un address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the socket path '{}' is too long for a Unix socket", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

bool wait_for(int fd, short events) {
  pollfd p{fd, events, 0};
  return poll(&p, 1, kIoTimeoutMs) == 1;
}

void write_line(int fd, const std::string& text) {
  const std::string line = text + "\n";
  std::size_t sent = 0;
  while (sent < line.size()) {
    if (!wait_for(fd, POLLOUT)) throw Error(ErrorCode::kUnavailable, "the run socket timed out");
    const auto n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("writing to the run socket failed: {}", std::strerror(errno)));
    }
    sent += static_cast<std::size_t>(n);
  }
}

std::string read_line(int fd) {
  std::string line;
  char buffer[4096];
  for (;;) {
    if (!wait_for(fd, POLLIN)) throw Error(ErrorCode::kUnavailable, "the run socket timed out");
    const auto n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0) {
      throw Error(ErrorCode::kUnavailable,
                  fmt::format("reading the run socket failed: {}", std::strerror(errno)));
    }
    if (n == 0) return line;
    line.append(buffer, static_cast<std::size_t>(n));
    const auto end = line.find('\n');
    if (end != std::string::npos) return line.substr(0, end);
    if (line.size() > kMaxRunMessageBytes) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("a run-socket message is longer than {} bytes", kMaxRunMessageBytes));
    }
  }
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

nlohmann::json request_run_socket(const std::string& path, const nlohmann::json& request) {
  const auto addr = address(path);
  Fd socket_fd{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (socket_fd.fd < 0) throw Error(ErrorCode::kUnavailable, "cannot create a Unix socket");
  if (::connect(socket_fd.fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("nothing answers on the run socket '{}' ({}): has its chase run "
                            "ended?",
                            path, std::strerror(errno)));
  }
  write_line(socket_fd.fd, request.dump());
  const auto line = read_line(socket_fd.fd);
  nlohmann::json reply;
  try {
    reply = nlohmann::json::parse(line);
  } catch (const nlohmann::json::exception&) {
    throw Error(ErrorCode::kUnavailable, "chase run sent a reply that is not JSON");
  }
  if (reply.contains("error")) {
    throw Error(error_code_named(reply.value("code", "")), reply.at("error").get<std::string>());
  }
  return reply;
}

RunSocketServer::RunSocketServer(Handler handler) : handler_(std::move(handler)) {
  std::string pattern = (std::filesystem::temp_directory_path() / "chase-run-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw Error(ErrorCode::kIo,
                fmt::format("cannot create a folder for the run socket: {}", std::strerror(errno)));
  }
  dir_ = pattern;
  path_ = dir_ + "/run.sock";
  const auto addr = address(path_);
  listener_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0 ||
      ::bind(listener_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener_, 16) != 0) {
    const std::string why = std::strerror(errno);
    if (listener_ >= 0) close(listener_);
    std::filesystem::remove_all(dir_);
    throw Error(ErrorCode::kUnavailable, fmt::format("cannot listen on '{}': {}", path_, why));
  }
  thread_ = std::thread([this] { serve(); });
}

RunSocketServer::~RunSocketServer() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  close(listener_);
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void RunSocketServer::serve() {
  while (!stopping_) {
    pollfd p{listener_, POLLIN, 0};
    if (poll(&p, 1, 100) != 1) continue;
    Fd client{::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC)};
    if (client.fd < 0) continue;
    nlohmann::json reply;
    try {
      const auto line = read_line(client.fd);
      nlohmann::json request;
      try {
        request = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception&) {
        throw Error(ErrorCode::kInvalidArgument, "a run report must be one JSON object per line");
      }
      reply = handler_(request);
    } catch (const Error& e) {
      reply = {{"error", e.what()}, {"code", std::string(to_string(e.code()))}};
    } catch (const std::exception& e) {
      reply = {{"error", e.what()}, {"code", "internal"}};
    }
    try {
      write_line(client.fd, reply.dump());
    } catch (const Error&) {
      // The script went away before reading its answer; the report itself is recorded.
    }
  }
}

}  // namespace chase::store
