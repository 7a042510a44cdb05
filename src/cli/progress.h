// Internal (CLI): a progress line for computations that may run long (many recurrences, many
// control periods, many forecast steps). It is drawn on standard error, redrawn in place at most
// every 200 ms and erased when the work ends, only when standard error is a terminal — logs and
// pipes never see it. CHASE_PROGRESS=always|never overrides the terminal test (tests use always).
//
// Thread safety: none; update() from the thread doing the work.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace chase::cli {

class ProgressLine {
 public:
  explicit ProgressLine(std::string label);
  ~ProgressLine();  // erases the line (a new line when it cannot be erased in place)
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // `done` of `total` `unit` ("3 of 40 epochs"); cheap when not drawn or not yet due.
  void update(double done, double total, std::string_view unit);
  bool enabled() const noexcept { return enabled_; }

 private:
  std::string label_;
  bool enabled_ = false;
  bool in_place_ = false;  // a terminal: redraw with \r
  bool drawn_ = false;
  std::chrono::steady_clock::time_point next_draw_{};
};

}  // namespace chase::cli
