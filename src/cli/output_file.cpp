// Checked outputs of the CLI (cli/output_file.h).
#include "cli/output_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <streambuf>

#include "chase/error.h"

namespace chase::cli {

namespace fs = std::filesystem;

// A stream buffer over a file descriptor that keeps the first write error instead of losing it.
class OutputFile::Buffer : public std::streambuf {
 public:
  Buffer(int fd, bool owned, std::string name) : fd_(fd), owned_(owned), name_(std::move(name)) {
    setp(storage_.data(), storage_.data() + storage_.size());
  }
  ~Buffer() override {
    flush_buffer();
    if (owned_ && fd_ >= 0) ::close(fd_);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  const std::string& name() const noexcept { return name_; }
  bool is_standard_stream() const noexcept { return !owned_; }

  void close() {
    flush_buffer();
    if (owned_ && fd_ >= 0) {
      // close() reports errors a delayed write (NFS, quotas) only finds now.
      if (::close(fd_) != 0 && error_ == 0) error_ = errno;
      fd_ = -1;
    }
    if (error_ != 0) {
      throw Error(ErrorCode::kIo,
                  fmt::format("writing {} failed: {}{}", name_, std::strerror(error_),
                              error_ == ENOSPC ? " (the disk is full: free space or write "
                                                 "elsewhere)"
                                               : ""));
    }
  }

 protected:
  int overflow(int c) override {
    if (!flush_buffer()) return traits_type::eof();
    if (c != traits_type::eof()) {
      *pptr() = static_cast<char>(c);
      pbump(1);
    }
    return traits_type::not_eof(c);
  }
  int sync() override { return flush_buffer() ? 0 : -1; }

 private:
  // Writes the buffered bytes; after the first error every later byte is dropped (and the stream
  // fails), so a full disk costs one failed write, not one per line.
  bool flush_buffer() {
    const char* data = pbase();
    std::size_t left = static_cast<std::size_t>(pptr() - pbase());
    setp(storage_.data(), storage_.data() + storage_.size());
    while (left > 0 && error_ == 0 && fd_ >= 0) {
      const ssize_t written = ::write(fd_, data, left);
      if (written < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        break;
      }
      data += written;
      left -= static_cast<std::size_t>(written);
    }
    return error_ == 0;
  }

  int fd_;
  bool owned_;
  std::string name_;
  int error_ = 0;
  std::array<char, 64 * 1024> storage_{};
};

namespace {

// Why `path` cannot be opened, and what to do, for the errno of open(2).
std::string open_failure(const fs::path& path, int error) {
  const auto parent = path.parent_path();
  std::error_code ec;
  if (error == ENOENT && !parent.empty() && !fs::exists(parent, ec)) {
    return fmt::format("the directory '{}' does not exist: create it or choose another path",
                       parent.string());
  }
  if (error == EISDIR) return "it is a directory: give a file name";
  if (error == EACCES || error == EPERM || error == EROFS) {
    return fmt::format("{}: choose a path you may write to", std::strerror(error));
  }
  return std::strerror(error);
}

}  // namespace

OutputFile::OutputFile(fs::path path, std::string option, bool append) {
  const std::string name = fmt::format("{} '{}'", option, path.string());
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
  int fd = -1;
  do {
    fd = ::open(path.c_str(), flags, 0666);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    throw Error(ErrorCode::kIo,
                fmt::format("cannot write {}: {}", name, open_failure(path, errno)));
  }
  buffer_ = std::make_unique<Buffer>(fd, true, name);
  stream_ = std::make_unique<std::ostream>(buffer_.get());
}

OutputFile::OutputFile(int fd, std::string name)
    : buffer_(std::make_unique<Buffer>(fd, false, std::move(name))),
      stream_(std::make_unique<std::ostream>(buffer_.get())) {}

OutputFile OutputFile::standard_output() { return OutputFile(STDOUT_FILENO, "standard output"); }
OutputFile OutputFile::standard_error() { return OutputFile(STDERR_FILENO, "standard error"); }

OutputFile::~OutputFile() = default;
OutputFile::OutputFile(OutputFile&&) noexcept = default;

std::ostream& OutputFile::stream() { return *stream_; }

void OutputFile::close() {
  stream_->flush();
  buffer_->close();
}

std::string OutputFile::describe() const { return buffer_->name(); }
bool OutputFile::is_standard_stream() const { return buffer_->is_standard_stream(); }

namespace {

struct FileKind {
  bool exists = false;
  bool regular = false;
  bool directory = false;
};

FileKind kind_of(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return {};
  return {true, fs::is_regular_file(status), fs::is_directory(status)};
}

// The same file: the same inode when both exist, the same resolved path otherwise.
bool same_file(const fs::path& a, const fs::path& b) {
  std::error_code ec;
  if (kind_of(a).exists && kind_of(b).exists) return fs::equivalent(a, b, ec) && !ec;
  const auto ca = fs::weakly_canonical(a, ec);
  if (ec) return false;
  const auto cb = fs::weakly_canonical(b, ec);
  return !ec && ca == cb;
}

// `path` lies inside the directory `directory`.
bool inside(const fs::path& path, const fs::path& directory) {
  std::error_code ec;
  const auto file = fs::weakly_canonical(path, ec);
  if (ec) return false;
  const auto folder = fs::weakly_canonical(directory, ec);
  if (ec) return false;
  const auto [end, _] = std::mismatch(folder.begin(), folder.end(), file.begin(), file.end());
  return end == folder.end();
}

}  // namespace

void RunFiles::input(std::string option, fs::path path) {
  if (path.empty()) return;
  const bool directory = kind_of(path).directory;
  inputs_.push_back({std::move(option), std::move(path), directory});
}

void RunFiles::claim_output(std::string option, fs::path path) {
  const auto kind = kind_of(path);
  // Devices and FIFOs are not overwritten by writing to them: /dev/null may serve twice.
  const bool overwritable = !kind.exists || kind.regular;
  if (overwritable) {
    for (const auto& in : inputs_) {
      const bool clash =
          in.directory ? kind.exists && inside(path, in.path) : same_file(path, in.path);
      if (!clash) continue;
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{} '{}' would overwrite {} '{}', which this run reads{}: write the "
                              "output to another file",
                              option, path.string(), in.option, in.path.string(),
                              in.directory ? " (a file in that directory)" : ""));
    }
    for (const auto& out : outputs_) {
      if (!same_file(path, out.path)) continue;
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("{} '{}' is also the file of {}: give each output its own file",
                              option, path.string(), out.option));
    }
  }
  outputs_.push_back({std::move(option), std::move(path), false});
}

OutputFile RunFiles::open_output(std::string option, fs::path path, bool append) {
  claim_output(option, path);
  return OutputFile(std::move(path), std::move(option), append);
}

}  // namespace chase::cli
