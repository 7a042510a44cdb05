#include "common/text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace chase {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

using namespace std::string_literals;

TEST(EscapeUntrusted, PrintableTextAndUtf8PassUnchanged) {
  EXPECT_EQ(escape_untrusted("carbon_intensity 412.5 gCO2eq/kWh"),
            "carbon_intensity 412.5 gCO2eq/kWh");
  EXPECT_EQ(escape_untrusted("≥ 0, Zürich, 東京, 🙂"), "≥ 0, Zürich, 東京, 🙂");
}

TEST(EscapeUntrusted, ControlBytesBecomeVisibleEscapes) {
  EXPECT_EQ(escape_untrusted("a\0b"s), "a\\x00b");
  EXPECT_EQ(escape_untrusted("\x1b[2J\x1b]0;owned\x07"), "\\x1b[2J\\x1b]0;owned\\x07");
  EXPECT_EQ(escape_untrusted("line\r\nnext\tcol"), "line\\r\\nnext\\tcol");
  EXPECT_EQ(escape_untrusted("del\x7f"), "del\\x7f");
}

TEST(EscapeUntrusted, C1ControlsAndInvalidUtf8AreEscaped) {
  // U+009B (CSI) in UTF-8 is C2 9B; some terminals start an escape sequence on it.
  EXPECT_EQ(escape_untrusted("\xc2\x9b"
                             "31m"),
            "\\u009b31m");
  // A lone 0x9B byte, a truncated sequence, an overlong form and a surrogate are not UTF-8.
  EXPECT_EQ(escape_untrusted("\x9b"), "\\x9b");
  EXPECT_EQ(escape_untrusted("\xe2\x89"), "\\xe2\\x89");
  EXPECT_EQ(escape_untrusted("\xc0\xaf"), "\\xc0\\xaf");
  EXPECT_EQ(escape_untrusted("\xed\xa0\x80"), "\\xed\\xa0\\x80");
}

TEST(EscapeUntrusted, EscapingTwiceChangesNothing) {
  const std::string once = escape_untrusted("\x1b[31mred\x1b[0m\0\xc2\x9b\xff"s);
  EXPECT_EQ(escape_untrusted(once), once);
  for (const char c : once) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20);
    EXPECT_NE(c, '\x7f');
  }
}

TEST(EscapeUntrusted, CutsLongTextAndSaysSo) {
  EXPECT_EQ(escape_untrusted(std::string(100, 'x'), 10), std::string(10, 'x') + "...");
  EXPECT_EQ(escape_untrusted("short", 10), "short");
}

TEST(RedactSecrets, EveryOccurrenceOfEverySecretIsMasked) {
  EXPECT_EQ(redact_secrets("token abc123 rejected; abc123 is expired", {"abc123"}),
            "token *** rejected; *** is expired");
  EXPECT_EQ(redact_secrets("user bob password hunter2", {"hunter2", ""}), "user bob password ***");
}

TEST(RedactSecrets, ALongerSecretIsMaskedWholeEvenWhenItContainsAShorterOne) {
  const auto text = redact_secrets("key=secret-key-123", {"secret", "secret-key-123"});
  EXPECT_EQ(text, "key=***");
  EXPECT_THAT(text, Not(HasSubstr("123")));
}

TEST(RedactSecrets, NoSecretsLeavesTheTextAlone) {
  EXPECT_EQ(redact_secrets("nothing to hide", {}), "nothing to hide");
  EXPECT_EQ(redact_secrets("nothing to hide", {""}), "nothing to hide");
}

}  // namespace
}  // namespace chase
