// Internal (chased, chase serve): signed bearer tokens — who a request comes from and what it may
// do, when it arrives over TCP where the kernel cannot tell (no SO_PEERCRED across machines).
//
// Format: "chase1.<base64url(payload)>.<base64url(signature)>", base64url without padding, where
// the payload is the JSON object {"sub": NAME, "scopes": [NAME, ...], "iat": SECONDS, "exp":
// SECONDS} (Unix times) and the signature is HMAC-SHA256, with the service's 32-byte key, of the
// text before the last dot ("chase1.<payload>"). Only the holder of the key issues tokens; whoever
// has a token may use it until it expires (a bearer token: keep it like a password).
//
// Contract: TokenKey::verify() checks, in this order, the shape (three parts, the "chase1" tag, at
// most kMaxTokenBytes, canonical base64url), the signature (compared in constant time with
// CRYPTO_memcmp, before the payload is even parsed), the payload's fields and types, and the times:
// a token is refused when `now` is past exp + kClockSkew or before iat - kClockSkew. Every refusal
// is a chase::Error(kPermissionDenied) whose message says what is wrong (malformed, bad signature,
// expired at ..., not yet valid), never the key or the expected signature.
// The key file holds one line: 64 hex digits (32 random bytes from OpenSSL's RAND_bytes).
// create_key_file() creates it with mode 0600 and refuses to overwrite; load() refuses a file that
// is not a regular file or whose mode gives group or others any access (chmod 600 FILE).
//
// Thread safety: a TokenKey is immutable after construction; verify() and issue() may be called
// from any number of threads at once.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chase::server {

constexpr std::size_t kMaxTokenBytes = 4096;
constexpr std::chrono::seconds kClockSkew{60};

struct TokenClaims {
  std::string subject;              // whom it was issued to (1 to 128 printable characters)
  std::vector<std::string> scopes;  // what it allows, e.g. "control-gpus", "recurring:write"
  std::int64_t issued_at = 0;       // Unix seconds
  std::int64_t expires_at = 0;      // Unix seconds

  bool has_scope(std::string_view scope) const;
};

class TokenKey {
 public:
  static constexpr std::size_t kBytes = 32;

  explicit TokenKey(const std::array<unsigned char, kBytes>& bytes) : bytes_(bytes) {}
  static TokenKey generate();  // from RAND_bytes; kInternal if OpenSSL has no entropy
  // Reads a key file; kNotFound, kPermissionDenied (mode or not a regular file) or kParse naming
  // `path` and what to do.
  static TokenKey load(const std::filesystem::path& path);
  // Writes this key to a new file of mode 0600; kAlreadyExists when `path` exists.
  void create_key_file(const std::filesystem::path& path) const;

  std::string issue(const TokenClaims& claims) const;
  // The claims of a valid token (see the contract); `now` is Unix seconds.
  TokenClaims verify(std::string_view token, std::int64_t now) const;
  TokenClaims verify(std::string_view token) const;  // now = the system clock

 private:
  std::array<unsigned char, kBytes> bytes_;
};

// Unix seconds of the system clock.
std::int64_t unix_now();

// base64url without padding (RFC 4648 §5); decode returns false for any non-canonical input.
std::string base64url_encode(std::string_view bytes);
bool base64url_decode(std::string_view text, std::string& bytes);

// The token in an "Authorization: Bearer <token>" header value, or empty when it has another form.
std::string_view bearer_token(std::string_view authorization);

// A client's token as it keeps it: the first line of a file, trailing blanks and CRs dropped.
// `what` names the file in errors ("--token-file 'PATH'"): kNotFound when it cannot be read,
// kInvalidArgument when that line is empty.
std::string read_token_file(const std::string& path, const std::string& what);
// $variable when set and not empty, else read_token_file($file_variable) when that is set and not
// empty, else nullopt.
std::optional<std::string> token_from_environment(const char* variable, const char* file_variable);

}  // namespace chase::server
