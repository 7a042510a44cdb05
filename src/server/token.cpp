// Signed bearer tokens (contract: server/token.h).
#include "server/token.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "chase/time.h"
#include "common/text.h"

namespace chase::server {
namespace {

using json = nlohmann::json;
constexpr std::string_view kTag = "chase1";
constexpr std::size_t kMaxSubjectBytes = 128;
constexpr std::size_t kMaxScopes = 32;
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

Error refused(const std::string& why) {
  return Error(ErrorCode::kPermissionDenied, "invalid bearer token: " + why);
}

int sextet(char c) {
  const auto found = kAlphabet.find(c);
  return found == std::string_view::npos ? -1 : static_cast<int>(found);
}

std::string hex(const std::array<unsigned char, TokenKey::kBytes>& bytes) {
  std::string text;
  for (unsigned char byte : bytes) text += fmt::format("{:02x}", byte);
  return text;
}

bool printable_name(std::string_view text, std::size_t max_bytes) {
  return !text.empty() && text.size() <= max_bytes &&
         std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

std::array<unsigned char, 32> hmac_sha256(const std::array<unsigned char, TokenKey::kBytes>& key,
                                          std::string_view message) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), digest.data(),
           &size) == nullptr ||
      size != digest.size()) {
    throw Error(ErrorCode::kInternal, "OpenSSL could not compute HMAC-SHA256");
  }
  return digest;
}

TokenClaims claims_from(const json& payload) {
  if (!payload.is_object()) throw refused("its payload is not a JSON object");
  TokenClaims claims;
  const auto sub = payload.find("sub");
  if (sub == payload.end() || !sub->is_string() ||
      !printable_name(sub->get_ref<const std::string&>(), kMaxSubjectBytes)) {
    throw refused("its payload has no valid \"sub\"");
  }
  claims.subject = sub->get<std::string>();
  const auto scopes = payload.find("scopes");
  if (scopes == payload.end() || !scopes->is_array() || scopes->size() > kMaxScopes) {
    throw refused("its payload has no valid \"scopes\" list");
  }
  for (const auto& scope : *scopes) {
    if (!scope.is_string() || !printable_name(scope.get_ref<const std::string&>(), 64)) {
      throw refused("its payload has a scope that is not a name");
    }
    claims.scopes.push_back(scope.get<std::string>());
  }
  for (auto [name, field] : {std::pair{"iat", &claims.issued_at}, {"exp", &claims.expires_at}}) {
    const auto value = payload.find(name);
    if (value == payload.end() || !value->is_number_integer()) {
      throw refused(fmt::format("its payload has no integer \"{}\"", name));
    }
    *field = value->get<std::int64_t>();
  }
  return claims;
}

std::string utc_text(std::int64_t seconds) {
  return format_utc_time(UtcTime(std::chrono::seconds(seconds)));
}

}  // namespace

bool TokenClaims::has_scope(std::string_view scope) const {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

std::string base64url_encode(std::string_view bytes) {
  std::string text;
  text.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16 |
                   static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8 |
                   static_cast<unsigned char>(bytes[i + 2]);
    for (int shift : {18, 12, 6, 0}) text += kAlphabet[(v >> shift) & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) v |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    text += kAlphabet[(v >> 18) & 63];
    text += kAlphabet[(v >> 12) & 63];
    if (rest == 2) text += kAlphabet[(v >> 6) & 63];
  }
  return text;
}

bool base64url_decode(std::string_view text, std::string& bytes) {
  bytes.clear();
  if (text.size() % 4 == 1) return false;
  std::uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    const int value = sextet(c);
    if (value < 0) return false;
    bits = (bits << 6) | static_cast<std::uint32_t>(value);
    count += 6;
    if (count >= 8) {
      count -= 8;
      bytes += static_cast<char>((bits >> count) & 0xff);
    }
  }
  // Canonical only: the bits left over must be zero, so one token has one spelling.
  return (bits & ((1u << count) - 1)) == 0;
}

std::string_view bearer_token(std::string_view authorization) {
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization.size() <= kScheme.size()) return {};
  // The scheme is case-insensitive (RFC 7235); the token itself is not.
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return {};
    }
  }
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

std::string read_token_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  std::string token;
  if (!in || !std::getline(in, token)) {
    throw Error(ErrorCode::kNotFound, fmt::format("{} cannot be read", what));
  }
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  if (token.empty()) {
    throw Error(ErrorCode::kInvalidArgument, fmt::format("{}: its first line is empty", what));
  }
  return token;
}

std::optional<std::string> token_from_environment(const char* variable, const char* file_variable) {
  if (const char* token = std::getenv(variable); token != nullptr && *token != '\0') return token;
  const char* file = std::getenv(file_variable);
  if (file == nullptr || *file == '\0') return std::nullopt;
  return read_token_file(file, fmt::format("{} '{}'", file_variable, file));
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TokenKey TokenKey::generate() {
  std::array<unsigned char, kBytes> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    throw Error(ErrorCode::kInternal, "OpenSSL's RAND_bytes gave no random bytes for a key");
  }
  return TokenKey(bytes);
}

TokenKey TokenKey::load(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int error = errno;
    throw Error(
        error == ENOENT ? ErrorCode::kNotFound : ErrorCode::kPermissionDenied,
        fmt::format("token key '{}' cannot be opened: {}{}", path.string(), std::strerror(error),
                    error == ENOENT ? " (create one with `chased token keygen --key FILE`)" : ""));
  }
  struct stat status {};
  const bool stated = ::fstat(fd, &status) == 0;
  std::string text(256, '\0');
  const auto got = stated && S_ISREG(status.st_mode) ? ::read(fd, text.data(), text.size()) : -1;
  ::close(fd);
  if (!stated || !S_ISREG(status.st_mode)) {
    throw Error(ErrorCode::kPermissionDenied,
                fmt::format("token key '{}' is not a regular file", path.string()));
  }
  if ((status.st_mode & 0077) != 0) {
    throw Error(ErrorCode::kPermissionDenied,
                fmt::format("token key '{}' has mode {:04o}: group or others may access it, and "
                            "whoever reads it can issue tokens; run `chmod 600 {}`",
                            path.string(), status.st_mode & 07777, path.string()));
  }
  text.resize(got < 0 ? 0 : static_cast<std::size_t>(got));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  std::array<unsigned char, kBytes> bytes{};
  const bool hex_digits = std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
  if (text.size() != 2 * kBytes || !hex_digits) {
    throw Error(ErrorCode::kParse,
                fmt::format("token key '{}' is not one line of {} hex digits (make a new one "
                            "with `chased token keygen --key FILE`)",
                            path.string(), 2 * kBytes));
  }
  for (std::size_t i = 0; i < kBytes; ++i) {
    bytes[i] = static_cast<unsigned char>(std::stoul(text.substr(2 * i, 2), nullptr, 16));
  }
  return TokenKey(bytes);
}

void TokenKey::create_key_file(const std::filesystem::path& path) const {
  // O_EXCL: never overwrite a key (every token issued with it would stop working) and never follow
  // a link someone placed there; the mode is given at creation, so there is no moment it is wider.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    throw Error(
        error == EEXIST ? ErrorCode::kAlreadyExists : ErrorCode::kIo,
        fmt::format("cannot create token key '{}': {}{}", path.string(), std::strerror(error),
                    error == EEXIST ? " (remove it first: tokens signed with it then stop "
                                      "working)"
                                    : ""));
  }
  const std::string line = hex(bytes_) + "\n";
  const bool written = ::fchmod(fd, 0600) == 0 &&
                       ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  const int error = errno;
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    throw Error(ErrorCode::kIo, fmt::format("cannot write token key '{}': {}", path.string(),
                                            std::strerror(error)));
  }
}

std::string TokenKey::issue(const TokenClaims& claims) const {
  if (!printable_name(claims.subject, kMaxSubjectBytes)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("token subject '{}': give 1 to {} printable characters, no spaces",
                            escape_untrusted(claims.subject, 140), kMaxSubjectBytes));
  }
  if (claims.scopes.empty() || claims.scopes.size() > kMaxScopes) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("a token needs 1 to {} scopes", kMaxScopes));
  }
  if (claims.expires_at <= claims.issued_at) {
    throw Error(ErrorCode::kInvalidArgument, "a token must expire after it is issued");
  }
  const json payload = {{"sub", claims.subject},
                        {"scopes", claims.scopes},
                        {"iat", claims.issued_at},
                        {"exp", claims.expires_at}};
  const std::string signed_part = fmt::format("{}.{}", kTag, base64url_encode(payload.dump()));
  const auto signature = hmac_sha256(bytes_, signed_part);
  return signed_part + "." +
         base64url_encode(
             std::string_view(reinterpret_cast<const char*>(signature.data()), signature.size()));
}

TokenClaims TokenKey::verify(std::string_view token) const { return verify(token, unix_now()); }

TokenClaims TokenKey::verify(std::string_view token, std::int64_t now) const {
  if (token.empty()) throw refused("it is empty");
  if (token.size() > kMaxTokenBytes) {
    throw refused(fmt::format("it is longer than {} bytes", kMaxTokenBytes));
  }
  const auto first_dot = token.find('.');
  const auto last_dot = token.rfind('.');
  if (first_dot == std::string_view::npos || first_dot == last_dot ||
      token.substr(0, first_dot) != kTag) {
    throw refused("it is not of the form chase1.<payload>.<signature>");
  }
  const std::string_view signed_part = token.substr(0, last_dot);
  std::string signature;
  if (!base64url_decode(token.substr(last_dot + 1), signature) || signature.size() != 32) {
    throw refused("its signature is not 32 bytes of base64url");
  }
  const auto expected = hmac_sha256(bytes_, signed_part);
  if (CRYPTO_memcmp(expected.data(), signature.data(), expected.size()) != 0) {
    throw refused("its signature does not match (tampered, or signed with another key)");
  }
  std::string payload_text;
  if (!base64url_decode(signed_part.substr(first_dot + 1), payload_text)) {
    throw refused("its payload is not base64url");
  }
  const TokenClaims claims = claims_from(json::parse(payload_text, nullptr, false));
  const auto skew = kClockSkew.count();
  if (claims.expires_at <= claims.issued_at) throw refused("it expires before it was issued");
  if (now > claims.expires_at + skew) {
    throw refused(fmt::format("it expired at {} (issued to '{}'); ask for a new one",
                              utc_text(claims.expires_at), claims.subject));
  }
  if (now < claims.issued_at - skew) {
    throw refused(fmt::format("it is not valid before {} (is this machine's clock right?)",
                              utc_text(claims.issued_at)));
  }
  return claims;
}

}  // namespace chase::server
