// Internal (store): the local protocol between `chase run` and the training script it runs
// (docs/RECURRING.md "Protocol"): a Unix stream socket whose path is $CHASE_RUN_SOCKET; per
// connection the script sends one JSON object on one line and gets one JSON object back on one
// line. Requests: {"epoch": N, "metric": X[, "energy_j": J, "time_s": S]} → {"action": "continue"
// | "stop", "reason": ..., "outcome": ...}; {"profile": [{"power_limit_w", "time_s",
// "energy_j"}...][, "max_power_limit_w": W]} → {"power_limit_w": W}. A refused request gets
// {"error": message, "code": name}.
//
// Thread safety: RunSocketServer serves from its own thread, one request at a time; the handler
// runs on that thread. request_run_socket is reentrant.
#pragma once

#include <atomic>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace chase::store {

// The longest request or reply line accepted (a profile of a few dozen limits is ~2 KiB).
inline constexpr std::size_t kMaxRunMessageBytes = 64 * 1024;

// Sends `request` to the socket at `path` and returns the reply; throws kUnavailable when nothing
// listens there (chase run has ended) and the reply's error as a chase::Error of its code.
nlohmann::json request_run_socket(const std::string& path, const nlohmann::json& request);

class RunSocketServer {
 public:
  using Handler = std::function<nlohmann::json(const nlohmann::json&)>;
  // Listens on a new socket in a new private temporary folder (mode 0700).
  explicit RunSocketServer(Handler handler);
  ~RunSocketServer();  // stops serving, removes the socket and its folder
  RunSocketServer(const RunSocketServer&) = delete;
  RunSocketServer& operator=(const RunSocketServer&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  void serve();
  Handler handler_;
  std::string dir_;
  std::string path_;
  int listener_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace chase::store
