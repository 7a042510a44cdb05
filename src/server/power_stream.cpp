// chased's power stream (contract: server/power_stream.h).
#include "server/power_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "chase/time.h"
#include "common/text.h"

namespace chase::server {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const auto at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

std::optional<std::size_t> whole_number(std::string_view text) {
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || text.size() > 9 || error != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

std::chrono::milliseconds parse_interval(std::string_view text) {
  const auto value = whole_number(text);
  if (!value || *value < static_cast<std::size_t>(kMinStreamInterval.count()) ||
      *value > static_cast<std::size_t>(kMaxStreamInterval.count())) {
    throw StreamRefusal{400, fmt::format("interval_ms '{}' must be a whole number of "
                                         "milliseconds from {} to {}",
                                         escape_untrusted(text, 20), kMinStreamInterval.count(),
                                         kMaxStreamInterval.count())};
  }
  return std::chrono::milliseconds(*value);
}

std::vector<std::size_t> parse_gpus(std::string_view text, const GpuBackend& backend) {
  std::vector<std::size_t> gpus;
  for (const auto item : split(text, ',')) {
    const auto index = whole_number(item);
    if (!index) {
      throw StreamRefusal{400, fmt::format("gpus: '{}' is not a GPU index (e.g. gpus=0,1)",
                                           escape_untrusted(item, 20))};
    }
    if (*index >= backend.gpu_count()) {
      throw StreamRefusal{404, fmt::format("gpus: there is no GPU {} (this daemon has {})", *index,
                                           backend.gpu_count())};
    }
    if (std::find(gpus.begin(), gpus.end(), *index) != gpus.end()) {
      throw StreamRefusal{400, fmt::format("gpus: GPU {} is listed twice", *index)};
    }
    gpus.push_back(*index);
  }
  return gpus;
}

}  // namespace

StreamRequest parse_stream_request(std::string_view query, const GpuBackend& gpus) {
  StreamRequest request;
  bool gpus_given = false;
  if (!query.empty()) {
    for (const auto pair : split(query, '&')) {
      const auto equals = pair.find('=');
      const auto key = pair.substr(0, equals);
      const auto value =
          equals == std::string_view::npos ? std::string_view() : pair.substr(equals + 1);
      if (key == "interval_ms") {
        request.interval = parse_interval(value);
      } else if (key == "gpus") {
        request.gpus = parse_gpus(value, gpus);
        gpus_given = true;
      } else {
        throw StreamRefusal{400, fmt::format("unknown query parameter '{}' (the stream takes "
                                             "interval_ms and gpus)",
                                             escape_untrusted(key, 40))};
      }
    }
  }
  if (!gpus_given) {
    for (std::size_t i = 0; i < gpus.gpu_count(); ++i) request.gpus.push_back(i);
  }
  return request;
}

std::string power_line(GpuBackend& gpus, const StreamRequest& request) {
  nlohmann::json readings = nlohmann::json::array();
  for (const std::size_t index : request.gpus) {
    nlohmann::json reading = {{"index", index}};
    try {
      reading["power_w"] = gpus.power_w(index);
    } catch (const std::exception& e) {
      reading["power_w"] = nullptr;
      reading["error"] = e.what();
    }
    readings.push_back(std::move(reading));
  }
  const UtcTime now = std::chrono::system_clock::now();
  const double unix_s = std::chrono::duration<double>(now.time_since_epoch()).count();
  return nlohmann::json{{"time", format_utc_time(now)},
                        {"unix_s", std::round(unix_s * 1000) / 1000},
                        {"gpus", std::move(readings)}}
             .dump() +
         "\n";
}

std::string stream_head(int minor_version) {
  return fmt::format(
      "HTTP/1.{} 200 OK\r\nContent-Type: application/x-ndjson\r\nCache-Control: no-store\r\n"
      "{}\r\n",
      minor_version == 0 ? 0 : 1,
      minor_version == 0 ? "Connection: close\r\n" : "Transfer-Encoding: chunked\r\n");
}

std::string stream_chunk(std::string_view line, int minor_version) {
  if (minor_version == 0) return std::string(line);
  return fmt::format("{:x}\r\n{}\r\n", line.size(), line);
}

}  // namespace chase::server
