// Internal: text from outside chase (file contents, a provider's answer) made safe to print, and
// secrets kept out of messages.
//
// escape_untrusted() is applied wherever such text is quoted in a message or a report: a terminal
// must never receive its control bytes (NUL, ESC sequences that move the cursor or retitle the
// window, a carriage return that overwrites the line before it). Printable text, UTF-8 included,
// passes unchanged, so escaping text that was already escaped changes nothing.
//
// Thread safety: pure functions.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace chase {

// `text` with its control characters written as escapes: \n, \r, \t, and \xNN for the other C0
// bytes and DEL; \u0080..\u009f for the C1 controls (which some terminals obey); \xNN for each
// byte that is not part of valid UTF-8. Everything else is copied as is.
std::string escape_untrusted(std::string_view text);

// escape_untrusted(text), cut to at most `max_bytes` bytes of the input (then "...").
std::string escape_untrusted(std::string_view text, std::size_t max_bytes);

// `text` with every occurrence of each non-empty secret replaced by "***". Secrets shorter than
// four bytes are replaced too: a message is better garbled than leaking part of a credential.
std::string redact_secrets(std::string text, const std::vector<std::string>& secrets);

}  // namespace chase
