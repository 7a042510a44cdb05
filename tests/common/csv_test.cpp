#include "common/csv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "chase/error.h"
#include "support/errors.h"

namespace chase::csv {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A file in the temp directory, named after the process and the test so that parallel test
// processes never share one; written in binary so CRLF and BOM bytes land exactly as given.
class TempFile {
 public:
  explicit TempFile(const std::string& content) {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ =
        std::filesystem::temp_directory_path() /
        (std::to_string(::getpid()) + "_" + test->test_suite_name() + "_" + test->name() + ".csv");
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// All records after the header, each with the line it started on.
struct Record {
  std::size_t line;
  std::vector<std::string> fields;
};
std::vector<Record> read_all(Reader& reader) {
  std::vector<Record> records;
  std::vector<std::string> fields;
  while (reader.next(fields)) records.push_back({reader.line(), fields});
  return records;
}

using chase::testing::error_message;

TEST(SplitRecord, SplitsPlainFields) {
  EXPECT_THAT(split_record("a,b,c"), ElementsAre("a", "b", "c"));
  EXPECT_THAT(split_record("a, b ,c"), ElementsAre("a", " b ", "c"));  // blanks are kept
  EXPECT_THAT(split_record(""), ElementsAre(""));
  EXPECT_THAT(split_record(",,"), ElementsAre("", "", ""));
  EXPECT_THAT(split_record("a,"), ElementsAre("a", ""));
}

TEST(SplitRecord, HandlesQuotedFields) {
  EXPECT_THAT(split_record(R"("a,b",c)"), ElementsAre("a,b", "c"));
  EXPECT_THAT(split_record(R"("say ""hi""",x)"), ElementsAre(R"(say "hi")", "x"));
  EXPECT_THAT(split_record(R"("",x)"), ElementsAre("", "x"));
  EXPECT_THAT(split_record(R"(x,"")"), ElementsAre("x", ""));
  EXPECT_THAT(split_record(R"("""")"), ElementsAre(R"(")"));
  EXPECT_THAT(split_record(R"("a" , b)"), ElementsAre("a ", " b"));
}

TEST(SplitRecord, OpensQuotesOnlyAtTheStartOfAField) {
  EXPECT_THAT(split_record(R"(5" screen,x)"), ElementsAre(R"(5" screen)", "x"));
  EXPECT_THAT(split_record(R"(a"b,c"d)"), ElementsAre(R"(a"b)", R"(c"d)"));
  EXPECT_THAT(split_record(R"(x,  "a,b")"), ElementsAre("x", "a,b"));  // blanks before are layout
}

TEST(SplitRecord, DropsATrailingCarriageReturnOnly) {
  EXPECT_THAT(split_record("a,b\r"), ElementsAre("a", "b"));
  EXPECT_THAT(split_record("\"a\",\"b\"\r"), ElementsAre("a", "b"));
  EXPECT_THAT(split_record("a\rb,c"), ElementsAre("a\rb", "c"));
}

TEST(SplitRecord, ReportsAnOpenQuoteAndReusesTheVector) {
  std::vector<std::string> fields = {"old", "old", "old", "old"};
  EXPECT_TRUE(split_record("a,b", fields));
  EXPECT_THAT(fields, ElementsAre("a", "b"));
  EXPECT_FALSE(split_record(R"(a,"b)", fields));
  EXPECT_FALSE(split_record(R"(a,"b"")", fields));  // a doubled quote does not close
  EXPECT_TRUE(split_record("a,\"b\nc\"", fields));
  EXPECT_THAT(fields, ElementsAre("a", "b\nc"));
}

TEST(ParseDouble, ParsesNumbers) {
  EXPECT_EQ(parse_double("242.9"), 242.9);
  EXPECT_EQ(parse_double("0"), 0.0);
  EXPECT_EQ(parse_double("-3"), -3.0);
  EXPECT_EQ(parse_double("+3.5"), 3.5);
  EXPECT_EQ(parse_double("1e3"), 1000.0);
  EXPECT_EQ(parse_double("2.5E-1"), 0.25);
  EXPECT_EQ(parse_double(".5"), 0.5);
  EXPECT_EQ(parse_double("  7 \t\r"), 7.0);
  EXPECT_EQ(parse_double("646.8567445847223"), 646.8567445847223);
}

TEST(ParseDouble, AcceptsNonFiniteSpellingsForCallersToJudge) {
  EXPECT_TRUE(std::isnan(parse_double("nan").value()));
  EXPECT_TRUE(std::isinf(parse_double("inf").value()));
  EXPECT_TRUE(std::isinf(parse_double("-inf").value()));
}

TEST(ParseDouble, RejectsWhatIsNotOneNumber) {
  for (const char* text : {"", " ", "abc", "1.2.3", "1,5", "12abc", "1 2", "+", "-", "+-1", "++1",
                           "--1", "0x10", "1e", "e5", "1e400", "\"5\""}) {
    EXPECT_FALSE(parse_double(text)) << "'" << text << "'";
  }
}

TEST(Trim, RemovesBlanksAtBothEnds) {
  EXPECT_EQ(trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim(" \t "), "");
  EXPECT_EQ(trim("x"), "x");
}

TEST(Reader, ReadsHeaderAndRecordsWithLineNumbers) {
  TempFile file("time, value \n2020-01-01,1\n\n2020-01-02,2\n   \n2020-01-03,3");  // no final \n
  Reader reader(file.path());
  EXPECT_THAT(reader.header(), ElementsAre("time", "value"));  // names are trimmed
  EXPECT_EQ(reader.column("value"), 1u);
  EXPECT_EQ(reader.column("Value"), std::nullopt);  // exact match only
  EXPECT_EQ(reader.column("missing"), std::nullopt);
  const auto records = read_all(reader);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].line, 2u);
  EXPECT_THAT(records[0].fields, ElementsAre("2020-01-01", "1"));
  EXPECT_EQ(records[1].line, 4u);
  EXPECT_EQ(records[2].line, 6u);
  EXPECT_THAT(records[2].fields, ElementsAre("2020-01-03", "3"));
  std::vector<std::string> fields;
  EXPECT_FALSE(reader.next(fields));  // stays at the end
}

TEST(Reader, HandlesCrlfLineEnds) {
  TempFile file("a,b\r\n1,\"x\"\r\n\r\n2,y\r\n");
  Reader reader(file.path());
  EXPECT_THAT(reader.header(), ElementsAre("a", "b"));
  const auto records = read_all(reader);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].fields, ElementsAre("1", "x"));
  EXPECT_THAT(records[1].fields, ElementsAre("2", "y"));
  EXPECT_EQ(records[1].line, 4u);
}

TEST(Reader, SkipsAByteOrderMarkAndBlankLinesBeforeTheHeader) {
  {
    TempFile file("\xEF\xBB\xBFtime,value\n1,2\n");
    Reader reader(file.path());
    EXPECT_THAT(reader.header(), ElementsAre("time", "value"));
  }
  {
    TempFile file("\xEF\xBB\xBF\n\n  \ntime,value\n1,2\n");
    Reader reader(file.path());
    EXPECT_THAT(reader.header(), ElementsAre("time", "value"));
    const auto records = read_all(reader);
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].line, 5u);
  }
}

TEST(Reader, KeepsAnUnnamedColumn) {
  TempFile file(",UTC time,carbon_intensity\n0,2020-01-01 00:00:00,242.9\n");
  Reader reader(file.path());
  EXPECT_THAT(reader.header(), ElementsAre("", "UTC time", "carbon_intensity"));
  EXPECT_EQ(reader.column("UTC time"), 1u);
}

TEST(Reader, ReturnsShortRowsAsTheyAreForCallersToCheck) {
  TempFile file("a,b,c\n1,2\n1,2,3,4\n");
  Reader reader(file.path());
  const auto records = read_all(reader);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_THAT(records[0].fields, ElementsAre("1", "2"));
  EXPECT_THAT(records[1].fields, ElementsAre("1", "2", "3", "4"));
}

TEST(Reader, JoinsLinesInsideAQuotedField) {
  TempFile file("name,note\nx,\"two\r\nlines\"\ny,z\n");
  Reader reader(file.path());
  const auto records = read_all(reader);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].line, 2u);  // the line the record starts on
  EXPECT_THAT(records[0].fields, ElementsAre("x", "two\nlines"));
  EXPECT_EQ(records[1].line, 4u);
  EXPECT_THAT(records[1].fields, ElementsAre("y", "z"));
}

TEST(Reader, RejectsAQuotedFieldThatIsNeverClosed) {
  TempFile file("a,b\n1,2\n3,\"open\n4,5\n");
  Reader reader(file.path());
  std::vector<std::string> fields;
  ASSERT_TRUE(reader.next(fields));
  const std::string message = error_message([&] { reader.next(fields); }, ErrorCode::kParse);
  EXPECT_THAT(message, HasSubstr(file.path().string() + ":3"));
  EXPECT_THAT(message, HasSubstr("never closed"));
}

TEST(Reader, HeaderOnlyFileHasNoRecords) {
  TempFile file("time,value\n\n");
  Reader reader(file.path());
  std::vector<std::string> fields;
  EXPECT_FALSE(reader.next(fields));
}

TEST(Reader, RejectsAnEmptyFile) {
  for (const char* content : {"", "\n\n  \r\n", "\xEF\xBB\xBF"}) {
    TempFile file(content);
    const std::string message =
        error_message([&] { Reader reader(file.path()); }, ErrorCode::kParse);
    EXPECT_THAT(message, HasSubstr(file.path().string()));
    EXPECT_THAT(message, HasSubstr("empty"));
  }
}

TEST(Reader, ReportsAMissingFileOrADirectory) {
  const auto missing =
      std::filesystem::temp_directory_path() / (std::to_string(::getpid()) + "_no_such_file.csv");
  std::string message = error_message([&] { Reader reader(missing); }, ErrorCode::kIo);
  EXPECT_THAT(message, HasSubstr(missing.string()));
  EXPECT_THAT(message, HasSubstr("No such file"));

  const auto directory = std::filesystem::temp_directory_path();
  message = error_message([&] { Reader reader(directory); }, ErrorCode::kIo);
  EXPECT_THAT(message, HasSubstr("directory"));
}

TEST(Reader, WhereNamesFileLineAndColumn) {
  TempFile file("time,value\n\n1,2\n");
  Reader reader(file.path());
  std::vector<std::string> fields;
  ASSERT_TRUE(reader.next(fields));
  EXPECT_EQ(reader.where(), file.path().string() + ":3");
  EXPECT_EQ(reader.where(1), file.path().string() + ":3, column 'value'");
  EXPECT_EQ(reader.where(5), file.path().string() + ":3, column '#6'");
}

}  // namespace
}  // namespace chase::csv
