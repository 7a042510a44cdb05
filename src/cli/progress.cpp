// The progress line of long CLI computations (cli/progress.h).
#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace chase::cli {

namespace {

constexpr auto kRedrawEvery = std::chrono::milliseconds(200);

}  // namespace

ProgressLine::ProgressLine(std::string label) : label_(std::move(label)) {
  const char* mode = std::getenv("CHASE_PROGRESS");
  const std::string_view setting = mode == nullptr ? "" : mode;
  in_place_ = isatty(STDERR_FILENO) == 1;
  enabled_ = setting == "always" || (setting != "never" && in_place_);
}

ProgressLine::~ProgressLine() {
  if (!drawn_ || !in_place_) return;
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
}

void ProgressLine::update(double done, double total, std::string_view unit) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_draw_) return;
  next_draw_ = now + kRedrawEvery;
  const double percent = total > 0 ? 100 * done / total : 0;
  const auto line =
      fmt::format("{}: {:.0f} of {:.0f} {} ({:.0f} %)", label_, done, total, unit, percent);
  // Not a terminal (CHASE_PROGRESS=always into a file): one line per redraw.
  fmt::print(stderr, "{}{}{}", in_place_ ? "\r\033[K" : "", line, in_place_ ? "" : "\n");
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace chase::cli
