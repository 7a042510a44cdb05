// The text-to-time parsers of chase/time.h (parse_utc_time, parse_duration and their option forms)
// and the HTTP Retry-After parser, with round-trip properties: a parsed time formats to text that
// parses back to the same time (to the millisecond, format_utc_time's precision); a parsed
// duration is positive.
#include "carbon/http_client.h"
#include "chase/time.h"
#include "fuzz_support.h"

using namespace chase;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  if (const auto time = parse_utc_time(text)) {
    const std::string formatted = format_utc_time(*time);
    const auto again = parse_utc_time(formatted);
    fuzz::require(again.has_value() &&
                  *again == std::chrono::floor<std::chrono::milliseconds>(*time));
  }
  if (const auto duration = parse_duration(text)) fuzz::require(duration->count() > 0);
  fuzz::expect_only_chase_errors([&] { static_cast<void>(parse_duration_option(text, "--d")); });
  fuzz::expect_only_chase_errors([&] { static_cast<void>(parse_time_option(text, "--t")); });
  if (const auto wait = detail::parse_retry_after(std::string(text))) {
    fuzz::require(wait->count() >= 0);
  }
  return 0;
}
