// Internal: the one way chase's loaders read an input file, so that no input can exhaust memory.
// A data file that never ends (/dev/zero, a FIFO, a growing log) or a file far larger than any real
// trace stops with chase::Error(kIo) naming the file, the limit and how to raise it, instead of
// being read until memory runs out.
//
// Limits: at most max_input_bytes() bytes per file (default 256 MiB; $CHASE_MAX_INPUT_BYTES sets
// it, e.g. 2G); text formats read line by line (CSV) may also cap a line's length, so a file
// without line breaks fails after kMaxLineBytes, not after the whole limit. Reading is buffered;
// the limits cost one comparison per buffer refill, not per byte.
//
// Thread safety: a BoundedInput is used by one thread at a time; max_input_bytes() by any.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <memory>
#include <string>

namespace chase::detail {

inline constexpr std::uint64_t kDefaultMaxInputBytes = 256ull << 20;
inline constexpr std::size_t kMaxLineBytes = 1u << 20;
inline constexpr const char* kMaxInputBytesVariable = "CHASE_MAX_INPUT_BYTES";

// kDefaultMaxInputBytes, or $CHASE_MAX_INPUT_BYTES: bytes, or a number with K, M or G (KiB, MiB,
// GiB). Throws kInvalidArgument naming the variable when it is not such a size.
std::uint64_t max_input_bytes();

class BoundedInput {
 public:
  // Opens `path` for reading; `max_line_bytes` 0: lines are not limited (JSON may be one line).
  // Throws kIo when it cannot be opened or is a directory.
  explicit BoundedInput(std::filesystem::path path, std::size_t max_line_bytes = 0);
  ~BoundedInput();
  BoundedInput(const BoundedInput&) = delete;
  BoundedInput& operator=(const BoundedInput&) = delete;

  // Reads past a limit, or a read error, throw chase::Error(kIo) out of the stream's operations.
  std::istream& stream();
  // The rest of the file as one string.
  std::string read_all();
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  class Buffer;
  std::filesystem::path path_;
  std::unique_ptr<Buffer> buffer_;
  std::unique_ptr<std::istream> stream_;
};

// BoundedInput(path).read_all().
std::string read_bounded_file(const std::filesystem::path& path);

}  // namespace chase::detail
