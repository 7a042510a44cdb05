// Internal (chased): GET /gpus/power/stream?interval_ms=N&gpus=0,1 — one NDJSON line of power
// readings every interval, as a chunked HTTP/1.1 response that lasts until the client goes away.
//
// Contract: parse_stream_request() reads the query: interval_ms (default 1000) must be within
// [kMinStreamInterval, kMaxStreamInterval] and gpus (default: all) a comma-separated list of
// existing GPU indices, each at most once; anything else throws a StreamRefusal with status 400 (or
// 404 for a GPU that does not exist) saying what is accepted. power_line() reads each GPU once:
//   {"time": "2026-01-01T00:00:00.123Z", "unix_s": 1767225600.123,
//    "gpus": [{"index": 0, "power_w": 155.0}, ...]}
// a GPU that fails to read has "power_w": null and "error". The daemon serves at most
// kMaxPowerStreams streams at once (the next gets 503); a stream's client that does not read falls
// behind by at most kMaxStreamBacklog bytes, after which lines are skipped, not buffered.
//
// Thread safety: pure functions, except power_line(), which reads the backend.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "chase/gpu.h"

namespace chase::server {

inline constexpr std::chrono::milliseconds kMinStreamInterval{100};
inline constexpr std::chrono::milliseconds kMaxStreamInterval{60000};
inline constexpr std::chrono::milliseconds kDefaultStreamInterval{1000};
inline constexpr std::size_t kMaxPowerStreams = 16;
inline constexpr std::size_t kMaxStreamBacklog = 64 * 1024;

struct StreamRequest {
  std::chrono::milliseconds interval = kDefaultStreamInterval;
  std::vector<std::size_t> gpus;
};

struct StreamRefusal {
  int status;
  std::string message;
};

// `query`: the target after '?' (may be empty).
StreamRequest parse_stream_request(std::string_view query, const GpuBackend& gpus);

std::string power_line(GpuBackend& gpus, const StreamRequest& request);

// The response head (chunked for HTTP/1.1; for HTTP/1.0, no framing and the connection closes
// when the stream ends) and one line framed for it.
std::string stream_head(int minor_version);
std::string stream_chunk(std::string_view line, int minor_version);

}  // namespace chase::server
