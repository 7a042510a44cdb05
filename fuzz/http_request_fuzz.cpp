// chased's request path: untrusted bytes from a socket through the HTTP parser (fed in two pieces,
// split where the first byte says, as a socket may deliver them) and every complete request
// through the DaemonService routes, over two simulated GPUs. Properties: the parser never holds
// more than a head and a body past its limits; every reply has a status in 200..599 and, except
// /metrics, a JSON body; a failed parser stays failed and empty.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "chase/simulated_gpu.h"
#include "fuzz_support.h"
#include "server/daemon_service.h"
#include "server/http_message.h"

using namespace chase;
using namespace chase::server;

namespace {

DaemonService& service() {
  static const bool quiet = [] {
    spdlog::set_level(spdlog::level::off);  // every lease logs a line: noise at 10^5 runs/s
    return true;
  }();
  static_cast<void>(quiet);
  static DaemonService instance(make_simulated_gpus(2, synthetic_demo_profile()), nullptr,
                                ServiceOptions{});
  return instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  const std::size_t split = size == 0 ? 0 : data[0] % (size + 1);
  constexpr std::size_t kMaxBody = 4096;
  HttpParser parser(HttpParser::Mode::kRequest, kMaxBody);
  Caller caller;
  caller.connection = 1;
  caller.credentials = PeerCredentials{1, 0, 0, {}};
  for (const auto piece : {text.substr(0, split), text.substr(split)}) {
    parser.feed(piece);
    while (auto request = parser.next()) {
      const Reply reply = service().handle(*request, caller);
      fuzz::require(reply.status >= 200 && reply.status < 600);
      if (request->path() != "/metrics") {
        fuzz::require(!nlohmann::json::parse(reply.body, nullptr, false).is_discarded());
      }
    }
    if (parser.error()) {
      fuzz::require(parser.error()->status >= 400 && parser.buffered() == 0);
      fuzz::require(!parser.next().has_value());
    }
  }
  service().connection_closed(1);  // leases end with the "connection", as on the socket
  return 0;
}
