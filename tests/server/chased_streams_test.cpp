// GET /gpus/power/stream over the fake NVML: chunked NDJSON at the interval asked, one reading per
// GPU; out-of-range intervals and unknown GPUs refused; at most 16 streams at once (503 beyond),
// a stream ends when its client disconnects (its place is free again), the permission read-gpus.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/chased_fixture.h"

namespace chase::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A client of the stream: sends the request, then reads the head and de-chunks the lines.
class StreamClient {
 public:
  StreamClient(const std::filesystem::path& socket, const std::string& target,
               const std::string& version = "HTTP/1.1") {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, socket.c_str(), sizeof address.sun_path - 1);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return;
    timeval timeout{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    const std::string request = "GET " + target + " " + version + "\r\nHost: t\r\n\r\n";
    [[maybe_unused]] auto sent = ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  ~StreamClient() { close(); }
  StreamClient(const StreamClient&) = delete;
  StreamClient& operator=(const StreamClient&) = delete;

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Reads for `duration` (or until the daemon closes); returns whether the connection ended.
  bool read_for(std::chrono::milliseconds duration) {
    const auto end = std::chrono::steady_clock::now() + duration;
    char buffer[4096];
    while (std::chrono::steady_clock::now() < end) {
      const auto got = ::recv(fd_, buffer, sizeof buffer, 0);
      if (got == 0) return true;
      if (got > 0) data_.append(buffer, static_cast<std::size_t>(got));
    }
    return false;
  }

  int status() const { return status_of(data_); }
  std::string head() const { return data_.substr(0, data_.find("\r\n\r\n")); }
  std::string body() const {
    const auto at = data_.find("\r\n\r\n");
    return at == std::string::npos ? std::string() : data_.substr(at + 4);
  }
  // The complete lines of a chunked body.
  std::vector<nlohmann::json> lines() const {
    std::vector<nlohmann::json> out;
    std::string rest = body();
    while (true) {
      const auto size_end = rest.find("\r\n");
      if (size_end == std::string::npos) break;
      const std::size_t size = std::stoul(rest.substr(0, size_end), nullptr, 16);
      if (size == 0 || rest.size() < size_end + 2 + size + 2) break;
      out.push_back(nlohmann::json::parse(rest.substr(size_end + 2, size)));
      rest = rest.substr(size_end + 2 + size + 2);
    }
    return out;
  }

 private:
  int fd_ = -1;
  std::string data_;
};

TEST(ChasedStreams, OneNdjsonLinePerIntervalWithEveryGpuAsked) {
  ChasedDaemon daemon(3);
  StreamClient client(daemon.socket_path(), "/gpus/power/stream?interval_ms=100&gpus=0,2");
  EXPECT_FALSE(client.read_for(1050ms));
  EXPECT_EQ(client.status(), 200) << client.head();
  EXPECT_THAT(client.head(), HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_THAT(client.head(), HasSubstr("Content-Type: application/x-ndjson"));
  const auto lines = client.lines();
  // One at once, then one every 100 ms: 11 in 1.05 s; fewer when a loaded machine (CI runs this
  // under ASan next to other tests) wakes the daemon late, since a line more than an interval late
  // is rescheduled from then rather than sent in a burst.
  EXPECT_GE(lines.size(), 5u) << client.body();
  EXPECT_LE(lines.size(), 12u) << client.body();
  double previous = 0;
  for (const auto& line : lines) {
    ASSERT_EQ(line["gpus"].size(), 2u) << line;
    EXPECT_EQ(line["gpus"][0]["index"], 0);
    EXPECT_EQ(line["gpus"][1]["index"], 2);
    EXPECT_EQ(line["gpus"][0]["power_w"], 155.0);  // the fake's 30 W idle + 0.5 x 250 W
    EXPECT_TRUE(line["time"].is_string());
    EXPECT_GE(line["unix_s"].get<double>(), previous);
    previous = line["unix_s"].get<double>();
  }
  if (lines.size() >= 3) {
    const double spacing =
        (lines.back()["unix_s"].get<double>() - lines[1]["unix_s"].get<double>()) /
        static_cast<double>(lines.size() - 2);
    EXPECT_GE(spacing, 0.085);  // never faster than asked
    EXPECT_LE(spacing, 0.25);
  }
}

TEST(ChasedStreams, WithoutGpusEveryGpuIsStreamedAtTheDefaultInterval) {
  ChasedDaemon daemon(2);
  StreamClient client(daemon.socket_path(), "/gpus/power/stream");
  client.read_for(300ms);
  ASSERT_EQ(client.status(), 200) << client.head();
  const auto lines = client.lines();
  ASSERT_EQ(lines.size(), 1u) << client.body();  // the next one is due after 1 s
  EXPECT_EQ(lines[0]["gpus"].size(), 2u);
}

TEST(ChasedStreams, BadQueriesAreRefusedWithWhatIsAccepted) {
  ChasedDaemon daemon(2);
  UnixConnection connection(daemon.socket_path());
  for (const auto& [query, status, text] : std::vector<std::tuple<std::string, int, std::string>>{
           {"interval_ms=10", 400, "from 100 to 60000"},
           {"interval_ms=60001", 400, "from 100 to 60000"},
           {"interval_ms=abc", 400, "whole number of milliseconds"},
           {"interval_ms=-5", 400, "whole number"},
           {"gpus=0,x", 400, "not a GPU index"},
           {"gpus=0,0", 400, "listed twice"},
           {"gpus=7", 404, "there is no GPU 7"},
           {"every=1", 400, "unknown query parameter 'every'"}}) {
    const auto response = connection.request("GET", "/gpus/power/stream?" + query);
    EXPECT_EQ(status_of(response), status) << query << ": " << response;
    EXPECT_THAT(response, HasSubstr(text)) << query;
  }
  EXPECT_EQ(status_of(connection.request("POST", "/gpus/power/stream")), 405);
  // The connection that was refused still serves.
  EXPECT_EQ(status_of(connection.request("GET", "/health")), 200);
}

TEST(ChasedStreams, AtMostSixteenAtOnceAndAClosedOneFreesItsPlace) {
  ChasedDaemon daemon(1);
  std::vector<std::unique_ptr<StreamClient>> streams;
  for (int i = 0; i < 16; ++i) {
    streams.push_back(
        std::make_unique<StreamClient>(daemon.socket_path(), "/gpus/power/stream?interval_ms=200"));
    streams.back()->read_for(30ms);
    ASSERT_EQ(streams.back()->status(), 200) << i;
  }
  StreamClient seventeenth(daemon.socket_path(), "/gpus/power/stream?interval_ms=200");
  EXPECT_TRUE(seventeenth.read_for(2s));  // answered and closed
  EXPECT_EQ(seventeenth.status(), 503);
  EXPECT_THAT(seventeenth.body(), HasSubstr("at most 16 power streams"));
  // The other requests are still served while the streams run.
  UnixConnection other(daemon.socket_path());
  EXPECT_EQ(status_of(other.request("GET", "/gpus")), 200);

  streams[3]->close();  // a client disconnects: its stream ends
  std::this_thread::sleep_for(300ms);
  StreamClient replacement(daemon.socket_path(), "/gpus/power/stream?interval_ms=200");
  replacement.read_for(100ms);
  EXPECT_EQ(replacement.status(), 200);
  EXPECT_TRUE(daemon.process().stderr_so_far().find("internal") == std::string::npos);
}

TEST(ChasedStreams, HttpOneZeroGetsUnframedLines) {
  ChasedDaemon daemon(1);
  StreamClient client(daemon.socket_path(), "/gpus/power/stream?interval_ms=100", "HTTP/1.0");
  client.read_for(250ms);
  EXPECT_EQ(client.status(), 200) << client.head();
  EXPECT_THAT(client.head(), ::testing::Not(HasSubstr("chunked")));
  const std::string body = client.body();
  ASSERT_FALSE(body.empty());
  const auto first = nlohmann::json::parse(body.substr(0, body.find('\n')));
  EXPECT_EQ(first["gpus"][0]["index"], 0);
}

TEST(ChasedStreams, NeedsThePermissionToReadGpus) {
  ChasedDaemon daemon(1, {"--allow-read-gpus", "uid:4242424"});
  StreamClient client(daemon.socket_path(), "/gpus/power/stream?interval_ms=100");
  client.read_for(300ms);
  EXPECT_EQ(client.status(), 403);
  EXPECT_THAT(client.body(), HasSubstr("read-gpus"));
  EXPECT_TRUE(client.lines().empty());
}

}  // namespace
}  // namespace chase::testing
