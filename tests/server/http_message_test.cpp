// The daemon's HTTP framing: what it accepts, and the status and message of each refusal.
#include "server/http_message.h"

#include <gtest/gtest.h>

namespace chase::server {
namespace {

std::optional<HttpMessage> parse_one(HttpParser& parser, const std::string& bytes) {
  parser.feed(bytes);
  return parser.next();
}

int refusal_status(const std::string& bytes, std::size_t max_body = kDefaultMaxBodyBytes) {
  HttpParser parser(HttpParser::Mode::kRequest, max_body);
  EXPECT_FALSE(parse_one(parser, bytes).has_value());
  return parser.error() ? parser.error()->status : 0;
}

TEST(HttpParser, ParsesARequestWithABody) {
  HttpParser parser(HttpParser::Mode::kRequest);
  const auto message = parse_one(parser,
                                 "POST /gpus/1/power_limit?x=1 HTTP/1.1\r\nHost: a\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 22\r\n\r\n"
                                 "{\"power_limit_w\": 200}");
  ASSERT_TRUE(message);
  EXPECT_EQ(message->method, "POST");
  EXPECT_EQ(message->target, "/gpus/1/power_limit?x=1");
  EXPECT_EQ(message->path(), "/gpus/1/power_limit");
  EXPECT_EQ(message->body, "{\"power_limit_w\": 200}");
  EXPECT_EQ(message->header("content-type").value_or(""), "application/json");
  EXPECT_TRUE(message->keep_alive());
  EXPECT_EQ(parser.buffered(), 0u);
}

TEST(HttpParser, WaitsForTheWholeMessageFedByteByByte) {
  const std::string text = "GET /gpus HTTP/1.1\r\nHost: a\r\n\r\nGET /metrics HTTP/1.0\r\n\r\n";
  HttpParser parser(HttpParser::Mode::kRequest);
  std::vector<HttpMessage> messages;
  for (char c : text) {
    parser.feed(std::string_view(&c, 1));
    while (auto message = parser.next()) messages.push_back(*message);
  }
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].target, "/gpus");
  EXPECT_EQ(messages[1].target, "/metrics");
  EXPECT_FALSE(messages[1].keep_alive());  // HTTP/1.0 without keep-alive
}

TEST(HttpParser, ConnectionCloseEndsKeepAlive) {
  HttpParser parser(HttpParser::Mode::kRequest);
  const auto message = parse_one(parser, "GET / HTTP/1.1\r\nConnection: Close\r\n\r\n");
  ASSERT_TRUE(message);
  EXPECT_FALSE(message->keep_alive());
}

TEST(HttpParser, RefusesMalformedInputWithTheRightStatus) {
  EXPECT_EQ(refusal_status("GARBAGE\r\n\r\n"), 400);
  EXPECT_EQ(refusal_status("GET /gpus\r\n\r\n"), 400);
  EXPECT_EQ(refusal_status("GET gpus HTTP/1.1\r\n\r\n"), 400);   // not a path
  EXPECT_EQ(refusal_status("G(T /gpus HTTP/1.1\r\n\r\n"), 400);  // not a token
  EXPECT_EQ(refusal_status("GET /gpus HTTP/2.0\r\n\r\n"), 505);
  EXPECT_EQ(refusal_status("GET /gpus HTTP/x.y\r\n\r\n"), 400);
  EXPECT_EQ(refusal_status("GET /gpus HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(refusal_status("GET /gpus HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(refusal_status("GET /gpus HTTP/1.1\r\nA: b\x01\r\n\r\n"), 400);
  EXPECT_EQ(refusal_status("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
  EXPECT_EQ(refusal_status("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400);
  EXPECT_EQ(refusal_status("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
  EXPECT_EQ(refusal_status("POST / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n"), 413);
  EXPECT_EQ(refusal_status("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", 10), 413);
  EXPECT_EQ(refusal_status("GET /" + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n"), 414);
}

TEST(HttpParser, RefusesAnEndlessHeadAtTheLimitAndStaysFailed) {
  HttpParser parser(HttpParser::Mode::kRequest);
  parser.feed("GET / HTTP/1.1\r\n");
  for (int i = 0; i < 2000 && parser.feed("X-Filler: aaaaaaaaaa\r\n"); ++i) parser.next();
  ASSERT_TRUE(parser.error());
  EXPECT_EQ(parser.error()->status, 431);
  EXPECT_FALSE(parser.feed("GET / HTTP/1.1\r\n\r\n"));
  EXPECT_FALSE(parser.next());
  EXPECT_EQ(parser.buffered(), 0u);  // nothing kept after a failure
}

TEST(HttpParser, ParsesResponses) {
  HttpParser parser(HttpParser::Mode::kResponse);
  const auto message = parse_one(parser, format_response(404, "application/json", "{}", false));
  ASSERT_TRUE(message);
  EXPECT_EQ(message->status, 404);
  EXPECT_EQ(message->reason, "Not Found");
  EXPECT_EQ(message->body, "{}");
  EXPECT_FALSE(message->keep_alive());
}

TEST(HttpParser, FormatRequestRoundTrips) {
  HttpParser parser(HttpParser::Mode::kRequest);
  const auto message =
      parse_one(parser, format_request("POST", "/gpus/0/power_limit", "{\"a\":1}"));
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, "{\"a\":1}");
}

}  // namespace
}  // namespace chase::server
