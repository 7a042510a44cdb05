// Test helper: an HTTP server on 127.0.0.1 (a free port chosen by the OS) that replays recorded
// responses, so provider clients are tested without ever leaving the machine.
//
// route(path, responses): requests for `path` (the path only, no query) get the responses in turn;
// the last one repeats. A response may `hang`: the server accepts the request and never answers
// (until the server is destroyed), to test client timeouts; an `endless` one streams its body
// forever, to test that clients cap what they read. Every request is recorded (path, query
// parameters, headers) so tests can assert what the client sent. Unknown paths get 404.
// route(path, responder): each request for `path` gets responder(request), so a test can reproduce
// how a service answers depending on what was asked (e.g. 400 for a time past its forecast).
#pragma once

#include <httplib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace chase::testing {

struct ReplayResponse {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool hang = false;
  std::string content_type = "application/json";
  // Streams `body` over and over, chunked, until the client stops reading (a body that never ends).
  bool endless = false;
};

struct RecordedRequest {
  std::string path;
  std::map<std::string, std::string> params;
  std::map<std::string, std::string> headers;  // names in lower case

  std::string header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
  std::string param(const std::string& name) const {
    const auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

class ReplayServer {
 public:
  ReplayServer() {
    server_.set_keep_alive_max_count(1);
    server_.Get(".*", [this](const httplib::Request& request, httplib::Response& response) {
      handle(request, response);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("ReplayServer: cannot bind to 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!server_.is_running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("ReplayServer: the server did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  ~ReplayServer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    released_.notify_all();
    server_.stop();
    thread_.join();
  }

  ReplayServer(const ReplayServer&) = delete;
  ReplayServer& operator=(const ReplayServer&) = delete;

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  void route(const std::string& path, std::vector<ReplayResponse> responses) {
    std::lock_guard lock(mutex_);
    routes_[path] = Route{std::move(responses), 0, nullptr};
  }
  void route(const std::string& path, ReplayResponse response) {
    route(path, std::vector<ReplayResponse>{std::move(response)});
  }
  using Responder = std::function<ReplayResponse(const RecordedRequest&)>;
  void route(const std::string& path, Responder responder) {
    std::lock_guard lock(mutex_);
    routes_[path] = Route{{}, 0, std::move(responder)};
  }

  std::vector<RecordedRequest> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count(const std::string& path) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(std::count_if(requests_.begin(), requests_.end(),
                                                  [&](const auto& r) { return r.path == path; }));
  }

 private:
  struct Route {
    std::vector<ReplayResponse> responses;
    std::size_t next = 0;
    Responder responder;  // when set, answers instead of `responses`
  };

  void handle(const httplib::Request& request, httplib::Response& response) {
    ReplayResponse reply;
    {
      std::unique_lock lock(mutex_);
      RecordedRequest recorded;
      recorded.path = request.path;
      for (const auto& [name, value] : request.params) recorded.params[name] = value;
      for (const auto& [name, value] : request.headers) {
        std::string lower = name;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        recorded.headers[lower] = value;
      }
      requests_.push_back(recorded);
      const auto it = routes_.find(request.path);
      if (it != routes_.end() && it->second.responder) {
        reply = it->second.responder(recorded);
      } else if (it == routes_.end() || it->second.responses.empty()) {
        response.status = 404;
        response.set_content(R"({"error":"no such route in the replay server"})",
                             "application/json");
        return;
      } else {
        Route& route = it->second;
        reply = route.responses[std::min(route.next, route.responses.size() - 1)];
        ++route.next;
      }
      if (reply.hang) {
        // Accept and never answer, until the server goes away.
        released_.wait_for(lock, std::chrono::seconds(10), [this] { return stopping_; });
        response.status = 503;
        return;
      }
    }
    response.status = reply.status;
    for (const auto& [name, value] : reply.headers) response.set_header(name, value);
    if (reply.endless) {
      const std::string chunk = reply.body.empty() ? std::string(64 * 1024, ' ') : reply.body;
      response.set_chunked_content_provider(reply.content_type,
                                            [this, chunk](std::size_t, httplib::DataSink& sink) {
                                              {
                                                std::lock_guard lock(mutex_);
                                                if (stopping_) return false;
                                              }
                                              return sink.write(chunk.data(), chunk.size());
                                            });
      return;
    }
    if (!reply.body.empty()) response.set_content(reply.body, reply.content_type.c_str());
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable released_;
  bool stopping_ = false;
  std::map<std::string, Route> routes_;
  std::vector<RecordedRequest> requests_;
};

}  // namespace chase::testing
