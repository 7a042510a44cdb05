// Signed bearer tokens (server/token.h): round trips, every kind of tampering, expiry with its
// clock skew allowance, malformed strings and the key file's permissions.
#include "server/token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "chase/error.h"
#include "support/scoped_env.h"
#include "support/temp_dir.h"

namespace chase::server {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;

TokenKey key_of(unsigned char fill) {
  std::array<unsigned char, TokenKey::kBytes> bytes{};
  bytes.fill(fill);
  return TokenKey(bytes);
}

TokenClaims claims(std::vector<std::string> scopes = {"read-gpus", "control-gpus"}) {
  return {"alice", std::move(scopes), kNow, kNow + 3600};
}

// The refusal message of verify(), or "accepted".
std::string refusal_of(const TokenKey& key, std::string_view token, std::int64_t now = kNow) {
  try {
    key.verify(token, now);
    return "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied) << e.what();
    return e.what();
  }
}

// A token of key_of(7) with any payload, signed here independently of TokenKey::issue().
std::string signed_token(const std::string& payload) {
  const std::string body = "chase1." + base64url_encode(payload);
  std::array<unsigned char, TokenKey::kBytes> bytes{};
  bytes.fill(7);
  unsigned char digest[32];
  unsigned int size = 0;
  HMAC(EVP_sha256(), bytes.data(), static_cast<int>(bytes.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &size);
  return body + "." + base64url_encode(std::string(reinterpret_cast<char*>(digest), size));
}

using testing::TempDir;

bool mentions(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

TEST(Token, RoundTripKeepsEveryClaim) {
  const TokenKey key = key_of(7);
  const std::string token = key.issue(claims());
  EXPECT_TRUE(token.starts_with("chase1."));
  const TokenClaims back = key.verify(token, kNow + 10);
  EXPECT_EQ(back.subject, "alice");
  EXPECT_EQ(back.scopes, (std::vector<std::string>{"read-gpus", "control-gpus"}));
  EXPECT_EQ(back.issued_at, kNow);
  EXPECT_EQ(back.expires_at, kNow + 3600);
  EXPECT_TRUE(back.has_scope("control-gpus"));
  EXPECT_FALSE(back.has_scope("read-cpus"));
}

TEST(Token, ATamperedPayloadIsRefused) {
  const TokenKey key = key_of(7);
  const std::string token = key.issue(claims({"read-gpus"}));
  // Another payload (more scopes) with the first token's signature.
  const std::string other = key.issue(claims({"read-gpus", "control-gpus"}));
  const std::string forged = other.substr(0, other.rfind('.')) + token.substr(token.rfind('.'));
  EXPECT_TRUE(mentions(refusal_of(key, forged), "signature does not match"));
  // One character of the payload changed.
  std::string flipped = token;
  flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
  EXPECT_TRUE(mentions(refusal_of(key, flipped), "signature does not match"));
}

TEST(Token, ATamperedSignatureIsRefused) {
  const TokenKey key = key_of(7);
  std::string token = key.issue(claims());
  token[token.size() - 3] = token[token.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_TRUE(mentions(refusal_of(key, token), "signature does not match"));
  const std::string truncated = key.issue(claims()).substr(0, token.size() - 4);
  EXPECT_TRUE(mentions(refusal_of(key, truncated), "signature is not 32 bytes"));
}

TEST(Token, ATokenOfAnotherKeyIsRefused) {
  const std::string token = key_of(7).issue(claims());
  EXPECT_TRUE(mentions(refusal_of(key_of(8), token), "signed with another key"));
}

TEST(Token, ExpiryAllowsTheClockSkewAndNoMore) {
  const TokenKey key = key_of(7);
  const std::string token = key.issue(claims());
  const std::int64_t exp = kNow + 3600;
  EXPECT_EQ(refusal_of(key, token, exp + kClockSkew.count()), "accepted");
  const std::string expired = refusal_of(key, token, exp + kClockSkew.count() + 1);
  EXPECT_TRUE(mentions(expired, "expired at")) << expired;
  EXPECT_TRUE(mentions(expired, "alice")) << expired;
  EXPECT_EQ(refusal_of(key, token, kNow - kClockSkew.count()), "accepted");
  EXPECT_TRUE(mentions(refusal_of(key, token, kNow - kClockSkew.count() - 1), "not valid before"));
}

TEST(Token, MalformedStringsAreRefusedWithoutACrash) {
  const TokenKey key = key_of(7);
  const std::string good = key.issue(claims());
  const std::string payload = good.substr(7, good.rfind('.') - 7);
  for (const std::string& bad :
       {std::string(), std::string("chase1"), std::string("chase1.."), std::string("...."),
        std::string("Bearer ") + good, "chase2" + good.substr(6), good + "=", good + ".x",
        "chase1." + payload, "chase1." + payload + ".!!!!", std::string(kMaxTokenBytes + 1, 'a'),
        std::string("chase1.\0.\0", 10)}) {
    EXPECT_NE(refusal_of(key, bad), "accepted") << bad;
  }
}

TEST(Token, ValidlySignedPayloadsWithWrongContentsAreRefused) {
  const TokenKey key = key_of(7);
  for (const std::string& payload :
       {std::string("[]"), std::string("not json"), std::string("{}"),
        std::string(R"({"sub":"a","scopes":["read-gpus"],"iat":1})"),
        std::string(R"({"sub":"a","scopes":"read-gpus","iat":1,"exp":2})"),
        std::string(R"({"sub":"","scopes":[],"iat":1,"exp":2})"),
        std::string(R"({"sub":"a","scopes":[1],"iat":1,"exp":2})"),
        std::string(R"({"sub":"a","scopes":[],"iat":1.5,"exp":2})"),
        std::string(R"({"sub":"a","scopes":[],"iat":5,"exp":2})")}) {
    const std::string token = signed_token(payload);
    const std::string why = refusal_of(key, token, 1);
    EXPECT_NE(why, "accepted") << payload;
    EXPECT_FALSE(mentions(why, "signature")) << payload << ": " << why;
  }
  EXPECT_EQ(refusal_of(key, signed_token(R"({"sub":"a","scopes":[],"iat":1,"exp":2})"), 1),
            "accepted");
}

TEST(Token, Base64UrlIsCanonical) {
  for (const std::string& bytes : {std::string(), std::string("f"), std::string("fo"),
                                   std::string("foo"), std::string("\xff\xfe\x00", 3)}) {
    std::string back;
    ASSERT_TRUE(base64url_decode(base64url_encode(bytes), back));
    EXPECT_EQ(back, bytes);
  }
  std::string out;
  EXPECT_TRUE(base64url_decode("Zg", out));
  EXPECT_FALSE(base64url_decode("Zh", out));  // the same byte with stray low bits
  EXPECT_FALSE(base64url_decode("Z", out));
  EXPECT_FALSE(base64url_decode("Zg==", out));
  EXPECT_FALSE(base64url_decode("Z+g", out));
}

TEST(Token, TheBearerHeaderIsParsed) {
  EXPECT_EQ(bearer_token("Bearer abc"), "abc");
  EXPECT_EQ(bearer_token("bearer  abc "), "abc");
  EXPECT_EQ(bearer_token("Basic abc"), "");
  EXPECT_EQ(bearer_token("Bearer"), "");
}

TEST(Token, IssueRefusesEmptyOrInvertedClaims) {
  const TokenKey key = key_of(7);
  EXPECT_THROW(key.issue({"", {"read-gpus"}, kNow, kNow + 1}), Error);
  EXPECT_THROW(key.issue({"bob smith", {"read-gpus"}, kNow, kNow + 1}), Error);
  EXPECT_THROW(key.issue({"bob", {}, kNow, kNow + 1}), Error);
  EXPECT_THROW(key.issue({"bob", {"read-gpus"}, kNow, kNow}), Error);
}

TEST(TokenKeyFile, IsCreatedWithMode0600AndLoadsBack) {
  TempDir dir;
  const auto path = dir.path() / "key";
  const TokenKey key = TokenKey::generate();
  key.create_key_file(path);
  struct stat status {};
  ASSERT_EQ(::stat(path.c_str(), &status), 0);
  EXPECT_EQ(status.st_mode & 0777, 0600u);
  const TokenKey loaded = TokenKey::load(path);
  EXPECT_EQ(loaded.verify(key.issue(claims()), kNow).subject, "alice");
  EXPECT_THROW(TokenKey::generate().create_key_file(path), Error);  // never overwritten
  EXPECT_EQ(TokenKey::load(path).verify(key.issue(claims()), kNow).subject, "alice");
}

TEST(TokenKeyFile, AKeyOthersMayReadIsRefused) {
  TempDir dir;
  const auto path = dir.path() / "key";
  TokenKey::generate().create_key_file(path);
  for (const mode_t mode : {0640, 0604, 0660, 0644}) {
    ::chmod(path.c_str(), mode);
    try {
      TokenKey::load(path);
      ADD_FAILURE() << "mode " << std::oct << mode << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kPermissionDenied);
      EXPECT_TRUE(mentions(e.what(), "chmod 600")) << e.what();
    }
  }
  ::chmod(path.c_str(), 0400);
  EXPECT_NO_THROW(TokenKey::load(path));
}

TEST(TokenKeyFile, MissingOrMalformedKeysAreClearErrors) {
  TempDir dir;
  try {
    TokenKey::load(dir.path() / "none");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_TRUE(mentions(e.what(), "chased token keygen")) << e.what();
  }
  const auto path = dir.path() / "short";
  std::ofstream(path) << "abcd\n";
  ::chmod(path.c_str(), 0600);
  EXPECT_THROW(TokenKey::load(path), Error);
  EXPECT_THROW(TokenKey::load(dir.path()), Error);  // a directory
}

// A client's token: the first line of its file, or the environment (CHASE_DAEMON_TOKEN[_FILE],
// CHASE_SERVER_TOKEN[_FILE]); an unreadable or empty file is an error naming it.
TEST(TokenFile, TheFirstLineWithoutTrailingBlanksOrAClearError) {
  TempDir dir;
  const auto file = dir.path() / "token";
  std::ofstream(file) << "chase1.abc.def \r\nsecond line\n";
  EXPECT_EQ(read_token_file(file.string(), "the file"), "chase1.abc.def");
  try {
    read_token_file((dir.path() / "none").string(), "--token-file 'none'");
    ADD_FAILURE() << "read a file that does not exist";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound);
    EXPECT_EQ(std::string(e.what()), "--token-file 'none' cannot be read");
  }
  std::ofstream(file) << " \n";
  try {
    read_token_file(file.string(), "the file");
    ADD_FAILURE() << "an empty first line was taken for a token";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()), "the file: its first line is empty");
  }
}

TEST(TokenFile, TheVariableWinsOverTheFileAndNeitherIsNone) {
  TempDir dir;
  const auto file = dir.path() / "token";
  std::ofstream(file) << "from-the-file\n";
  testing::ScopedEnv token("CHASE_TEST_TOKEN", "from-the-variable");
  testing::ScopedEnv token_file("CHASE_TEST_TOKEN_FILE", file.string());
  EXPECT_EQ(token_from_environment("CHASE_TEST_TOKEN", "CHASE_TEST_TOKEN_FILE"),
            "from-the-variable");
  {
    testing::ScopedEnv empty("CHASE_TEST_TOKEN", "");
    EXPECT_EQ(token_from_environment("CHASE_TEST_TOKEN", "CHASE_TEST_TOKEN_FILE"), "from-the-file");
    testing::ScopedEnv no_file("CHASE_TEST_TOKEN_FILE", std::nullopt);
    EXPECT_EQ(token_from_environment("CHASE_TEST_TOKEN", "CHASE_TEST_TOKEN_FILE"), std::nullopt);
  }
  testing::ScopedEnv unset("CHASE_TEST_TOKEN", std::nullopt);
  testing::ScopedEnv missing("CHASE_TEST_TOKEN_FILE", (dir.path() / "none").string());
  EXPECT_THROW(token_from_environment("CHASE_TEST_TOKEN", "CHASE_TEST_TOKEN_FILE"), Error);
}

}  // namespace
}  // namespace chase::server
