// A training script's side of chase run (contract: chase/run_client.h).
#include "chase/run_client.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>

#include "chase/error.h"
#include "store/run_socket.h"

namespace chase {
namespace {

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw Error(ErrorCode::kUnavailable,
                fmt::format("{} is not set: this process was not started by `chase run` (run it "
                            "as chase run --job NAME ... -- CMD)",
                            name));
  }
  return value;
}

template <typename Number>
Number environment_number(const char* name) {
  const auto text = environment(name);
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || *end != '\0' || !std::isfinite(value)) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}='{}' is not a number", name, text));
  }
  return static_cast<Number>(value);
}

}  // namespace

RunClient RunClient::from_environment() {
  RunClient client;
  client.socket_ = environment("CHASE_RUN_SOCKET");
  client.job_ = environment("CHASE_JOB");
  client.batch_size_ = environment_number<std::size_t>("CHASE_BATCH_SIZE");
  client.run_id_ = environment_number<std::int64_t>("CHASE_RUN_ID");
  client.profiling_ = environment("CHASE_PROFILE") == "1";
  if (const char* limit = std::getenv("CHASE_POWER_LIMIT_W"); limit != nullptr && *limit != '\0') {
    client.power_limit_w_ = environment_number<double>("CHASE_POWER_LIMIT_W");
  }
  return client;
}

RunVerdict RunClient::report(std::size_t epoch, double metric,
                             const std::optional<RunAccount>& account) const {
  if (!std::isfinite(metric)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("epoch {}: the metric {} is not a finite number", epoch, metric));
  }
  nlohmann::json request = {{"epoch", epoch}, {"metric", metric}};
  if (account) {
    request["energy_j"] = account->energy_j;
    request["time_s"] = account->time_s;
  }
  const auto reply = store::request_run_socket(socket_, request);
  return {reply.value("action", "") == "stop", reply.value("outcome", ""),
          reply.value("reason", "")};
}

double RunClient::report_profile(const LimitProfile& profile) const {
  auto points = nlohmann::json::array();
  for (const auto& p : profile.points()) {
    points.push_back(
        {{"power_limit_w", p.power_limit_w}, {"time_s", p.time_s}, {"energy_j", p.energy_j}});
  }
  const auto reply =
      store::request_run_socket(socket_, {{"profile", points},
                                          {"max_power_limit_w", profile.max_power_limit_w()},
                                          {"gpu_count", profile.info().gpu_count}});
  return reply.at("power_limit_w").get<double>();
}

}  // namespace chase
