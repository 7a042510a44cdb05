#include "common/json_fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chase/error.h"
#include "support/errors.h"

namespace chase {
namespace {

using ::testing::AllOf;
using testing::error_message;
using ::testing::HasSubstr;
using ::testing::Not;

const nlohmann::json kDoc = nlohmann::json::parse(R"({
  "gpu_count": 4, "negative": -1, "fraction": 2.5, "whole_float": 8.0, "huge": 1e30,
  "name": "a40", "number_as_text": "4", "flag": true, "nothing": null, "list": [1, 2],
  "escape": "\u001b[2J"
})");

TEST(JsonFields, ReadsFieldsOfTheRightTypeAndLeavesMissingOnesToTheCaller) {
  const JsonFields fields(kDoc, "profile.json");
  EXPECT_EQ(fields.count("gpu_count"), 4u);
  EXPECT_EQ(fields.count("whole_float"), 8u);
  EXPECT_EQ(fields.number("fraction"), 2.5);
  EXPECT_EQ(fields.text("name"), "a40");
  EXPECT_EQ(fields.flag("flag"), true);
  EXPECT_EQ(fields.count("absent"), std::nullopt);
  EXPECT_EQ(fields.text("nothing"), std::nullopt);  // null reads as not given
  EXPECT_FALSE(fields.has("absent"));
}

TEST(JsonFields, ANegativeCountIsRefusedNotWrapped) {
  const JsonFields fields(kDoc, "profile.json");
  const auto message = error_message([&] { (void)fields.count("negative"); }, ErrorCode::kParse);
  EXPECT_THAT(message,
              AllOf(HasSubstr("profile.json"), HasSubstr("'negative' is -1"), HasSubstr("is -1"),
                    HasSubstr("whole number"), Not(HasSubstr("18446744073709551615"))));
  EXPECT_THAT(error_message([&] { (void)fields.count("fraction"); }, ErrorCode::kParse),
              HasSubstr("is 2.5"));
  EXPECT_THAT(error_message([&] { (void)fields.count("huge"); }, ErrorCode::kParse),
              HasSubstr("'huge'"));
  EXPECT_THAT(error_message([&] { (void)fields.count("gpu_count", 1, 2); }, ErrorCode::kParse),
              HasSubstr("from 1 to 2"));
}

TEST(JsonFields, AFieldOfTheWrongTypeNamesFileFieldValueAndExpectation) {
  const JsonFields fields(kDoc, "profile.json: points[3]");
  auto message = error_message([&] { (void)fields.count("number_as_text"); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr("profile.json: points[3]"), HasSubstr("'number_as_text'"),
                             HasSubstr("\"4\""), Not(HasSubstr("json.exception"))));
  message = error_message([&] { (void)fields.text("gpu_count"); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr("'gpu_count' is 4"), HasSubstr("a string")));
  message = error_message([&] { (void)fields.flag("list"); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr("[1,2]"), HasSubstr("true or false")));
  message = error_message([&] { (void)fields.number("fraction", 0, 1); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr("in [0, 1]"));
  message = error_message([&] { (void)fields.required_number("absent"); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr("'absent' is missing"), HasSubstr("finite number")));
}

TEST(JsonFields, ValuesQuotedInMessagesAreEscaped) {
  const JsonFields fields(kDoc, "profile.json");
  const auto message = error_message([&] { (void)fields.number("escape"); }, ErrorCode::kParse);
  EXPECT_THAT(message, Not(HasSubstr("\x1b")));
}

TEST(JsonFields, OnlyAnObjectHasFields) {
  const nlohmann::json list = nlohmann::json::array();
  const auto message = error_message(
      [&] { [[maybe_unused]] const JsonFields fields(list, "settings.json"); }, ErrorCode::kParse);
  EXPECT_THAT(message, AllOf(HasSubstr("settings.json"), HasSubstr("JSON object")));
}

TEST(JsonFileWrite, ReplacesTheFileWholeAndLeavesNoTemporary) {
  const auto dir = std::filesystem::temp_directory_path() / "chase_json_write_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto path = dir / "doc.json";
  std::ofstream(path) << "old";
  write_json_file_atomically(path, {{"a", 1}}, "the test document");
  std::stringstream text;
  text << std::ifstream(path).rdbuf();
  EXPECT_EQ(nlohmann::json::parse(text.str()), nlohmann::json({{"a", 1}}));
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator()),
            1);
  std::filesystem::remove_all(dir);
}

TEST(JsonFileWrite, AFailureIsAnIoErrorNamingWhatAndTheFile) {
  const auto path = std::filesystem::temp_directory_path() / "chase-no-such-dir" / "doc.json";
  const auto message = error_message(
      [&] {
        write_json_file_atomically(path, {{"a", 1}}, "the test document");
      },
      ErrorCode::kIo);
  EXPECT_THAT(message,
              AllOf(HasSubstr("cannot write the test document"), HasSubstr("chase-no-such-dir")));
}

}  // namespace
}  // namespace chase
