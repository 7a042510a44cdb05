// Internal (CLI): every file and standard stream a command writes its results to. One rule for all
// of them, so a user's result is never lost quietly:
//   - an output is opened (created or truncated) when the command starts, before any long work, so
//     a missing directory or a refused permission fails at once, naming the option and the path;
//   - every write is checked: the first failure (a full disk, /dev/full, a closed pipe) is kept
//     with its errno, later writes are dropped, and close() throws chase::Error(kIo) naming the
//     option, the path and the reason;
//   - an output never names a file the same run reads, or another output of it (RunFiles checks
//     before opening, since opening truncates).
// Standard output and standard error are OutputFiles too (not owned: close() flushes only).
//
// Thread safety: none; one command writes from one thread.
#pragma once

#include <exception>
#include <filesystem>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace chase::cli {

class OutputFile {
 public:
  // Opens `path` for writing now (O_TRUNC unless `append`); `option` names it in messages ("-o",
  // "--csv"). Throws kIo when it cannot be opened, saying why and what to do.
  OutputFile(std::filesystem::path path, std::string option, bool append = false);
  static OutputFile standard_output();
  static OutputFile standard_error();
  ~OutputFile();  // flushes what it can; errors are reported by close(), never here
  OutputFile(OutputFile&&) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream();
  // Flushes and (for files) closes. Throws kIo naming the output and the first write error.
  void close();
  // "-o 'report.json'" or "standard output": how messages name this output.
  std::string describe() const;
  bool is_standard_stream() const;

 private:
  class Buffer;
  OutputFile(int fd, std::string name);
  std::unique_ptr<Buffer> buffer_;
  std::unique_ptr<std::ostream> stream_;
};

// The files one run reads and writes. Inputs are registered first; every output is checked against
// the inputs and the outputs before it, then opened. Devices (/dev/null, /dev/stdout) and FIFOs
// may be named more than once; a regular file, or an existing file inside an input directory, not.
class RunFiles {
 public:
  // An input file or directory; an empty path is ignored.
  void input(std::string option, std::filesystem::path path);
  // Checks `path` (throws kInvalidArgument naming both options when it is taken) and records it.
  // For outputs that something else opens (e.g. the EnergyMonitor's --log).
  void claim_output(std::string option, std::filesystem::path path);
  // claim_output, then opens it.
  OutputFile open_output(std::string option, std::filesystem::path path, bool append = false);

 private:
  struct Named {
    std::string option;
    std::filesystem::path path;
    bool directory = false;
  };
  std::vector<Named> inputs_;
  std::vector<Named> outputs_;
};

// Writes to every output in turn and remembers the first failure, so one failing output does not
// stop the others from getting their part of the result ("a partial report beats none"). rethrow()
// throws the first failure, if any.
class FirstFailure {
 public:
  template <typename Write>
  void attempt(Write&& write) {
    try {
      write();
    } catch (...) {
      if (!failure_) failure_ = std::current_exception();
    }
  }
  bool failed() const noexcept { return static_cast<bool>(failure_); }
  void rethrow() const {
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  std::exception_ptr failure_;
};

}  // namespace chase::cli
