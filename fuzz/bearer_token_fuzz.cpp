// Bearer tokens (server/token.h): untrusted text from an Authorization header through
// bearer_token() and TokenKey::verify() with a fixed key and clock. Byte 0 picks whether the input
// is a header value ("Bearer ..." handling) or the token itself. Properties: a refusal is only
// ever a chase::Error; an accepted token's claims issue a token that verifies to the same claims;
// base64url decoding accepts only canonical text (decode then encode gives the input back).
#include <array>

#include "fuzz_support.h"
#include "server/token.h"

using namespace chase;
using namespace chase::server;

namespace {

// The key the seed corpus's valid tokens are signed with: 32 bytes of 0x2a.
const TokenKey& key() {
  static const TokenKey instance = [] {
    std::array<unsigned char, TokenKey::kBytes> bytes{};
    bytes.fill(0x2a);
    return TokenKey(bytes);
  }();
  return instance;
}

constexpr std::int64_t kNow = 1'800'000'000;  // 2027-01-15: the seeds are valid then

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool header = (data[0] & 1) != 0;
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  const std::string_view token = header ? bearer_token(text) : text;

  std::string decoded;
  if (base64url_decode(token, decoded)) fuzz::require(base64url_encode(decoded) == token);

  fuzz::expect_only_chase_errors([&] {
    const TokenClaims claims = key().verify(token, kNow);
    fuzz::require(claims.expires_at > claims.issued_at && !claims.subject.empty());
    fuzz::require(kNow <= claims.expires_at + kClockSkew.count());
    if (claims.scopes.empty()) return;  // issue() refuses those; verify() accepts them
    const TokenClaims again = key().verify(key().issue(claims), kNow);
    fuzz::require(again.subject == claims.subject && again.scopes == claims.scopes &&
                  again.issued_at == claims.issued_at && again.expires_at == claims.expires_at);
  });
  return 0;
}
