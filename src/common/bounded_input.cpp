// Bounded reading of input files (common/bounded_input.h).
#include "common/bounded_input.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <streambuf>
#include <string_view>

#include "chase/error.h"

namespace chase::detail {

namespace {

// "256 MiB" for a limit in messages.
std::string format_size(std::uint64_t bytes) {
  if (bytes >= (1ull << 30) && bytes % (1ull << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes >= (1ull << 10) && bytes % (1ull << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

std::uint64_t parse_size(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  int shift = 0;
  if (unit == "K" || unit == "k" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GiB") {
    shift = 30;
  } else if (!unit.empty()) {
    value = 0;
  }
  if (error != std::errc{} || end == text.data() || value == 0 || value > (UINT64_MAX >> shift)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}='{}' is not a size: give a positive number of bytes, or one with "
                            "K, M or G (e.g. 2G)",
                            kMaxInputBytesVariable, text));
  }
  return value << shift;
}

}  // namespace

std::uint64_t max_input_bytes() {
  const char* text = std::getenv(kMaxInputBytesVariable);
  if (text == nullptr || *text == '\0') return kDefaultMaxInputBytes;
  return parse_size(text);
}

// A read buffer over a file descriptor that counts what it reads and stops at the limits.
class BoundedInput::Buffer : public std::streambuf {
 public:
  Buffer(int fd, std::filesystem::path path, std::uint64_t max_bytes, std::size_t max_line)
      : fd_(fd), path_(std::move(path)), max_bytes_(max_bytes), max_line_(max_line) {}
  ~Buffer() override { ::close(fd_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    ssize_t got = 0;
    do {
      got = ::read(fd_, storage_.data(), storage_.size());
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      throw Error(ErrorCode::kIo, fmt::format("reading '{}' failed after {} bytes: {}",
                                              path_.string(), total_, std::strerror(errno)));
    }
    if (got == 0) return traits_type::eof();
    const auto n = static_cast<std::size_t>(got);
    total_ += n;
    if (total_ > max_bytes_) too_large();
    if (max_line_ > 0) check_line_length(n);
    setg(storage_.data(), storage_.data(), storage_.data() + n);
    return traits_type::to_int_type(*gptr());
  }

 private:
  [[noreturn]] void too_large() const {
    throw Error(ErrorCode::kIo,
                fmt::format("'{}' is larger than the input limit of {} (reading stopped there): "
                            "is it the right file? A real trace larger than that can be read with "
                            "{}=<size>, e.g. {}=4G",
                            path_.string(), format_size(max_bytes_), kMaxInputBytesVariable,
                            kMaxInputBytesVariable));
  }

  void check_line_length(std::size_t n) {
    const char* begin = storage_.data();
    const auto* first = static_cast<const char*>(std::memchr(begin, '\n', n));
    if (first == nullptr) {
      line_bytes_ += n;
    } else {
      // The line this chunk ends, then the one it leaves open.
      line_bytes_ += static_cast<std::size_t>(first - begin);
      if (line_bytes_ <= max_line_) {
        const auto* last = static_cast<const char*>(::memrchr(begin, '\n', n));
        line_bytes_ = static_cast<std::size_t>(begin + n - last) - 1;
      }
    }
    if (line_bytes_ <= max_line_) return;
    throw Error(ErrorCode::kIo,
                fmt::format("'{}' has a line longer than {} (before byte {}): not a text file "
                            "of rows; check the path (a device such as /dev/zero?)",
                            path_.string(), format_size(max_line_), total_));
  }

  int fd_;
  std::filesystem::path path_;
  std::uint64_t max_bytes_;
  std::size_t max_line_;
  std::uint64_t total_ = 0;
  std::size_t line_bytes_ = 0;  // bytes since the last line break
  std::array<char, 64 * 1024> storage_{};
};

BoundedInput::BoundedInput(std::filesystem::path path, std::size_t max_line_bytes)
    : path_(std::move(path)) {
  const auto max_bytes = max_input_bytes();
  int fd = -1;
  do {
    fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    throw Error(ErrorCode::kIo,
                fmt::format("Cannot open '{}': {}. Check the path and the file's permissions.",
                            path_.string(), std::strerror(errno)));
  }
  struct stat info {};
  if (::fstat(fd, &info) == 0 && S_ISDIR(info.st_mode)) {
    ::close(fd);
    throw Error(ErrorCode::kIo, fmt::format("'{}' is a directory, not a file: pass the path of a "
                                            "file.",
                                            path_.string()));
  }
  buffer_ = std::make_unique<Buffer>(fd, path_, max_bytes, max_line_bytes);
  stream_ = std::make_unique<std::istream>(buffer_.get());
  // The buffer's errors (limits, read errors) leave the stream's operations as they are thrown.
  stream_->exceptions(std::ios::badbit);
}

BoundedInput::~BoundedInput() = default;

std::istream& BoundedInput::stream() { return *stream_; }

std::string BoundedInput::read_all() {
  std::string content;
  std::array<char, 64 * 1024> chunk{};
  while (true) {
    const auto n = buffer_->sgetn(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    if (n <= 0) break;
    content.append(chunk.data(), static_cast<std::size_t>(n));
  }
  return content;
}

std::string read_bounded_file(const std::filesystem::path& path) {
  return BoundedInput(path).read_all();
}

}  // namespace chase::detail
