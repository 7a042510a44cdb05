// chase/error.h — the one exception type the library throws.
//
// Contract: every failure the library reports is a chase::Error whose what() is a complete,
// user-facing sentence: it names the file/line, device or call that failed, what went wrong and,
// where there is one, what to do about it. code() classifies the failure so callers (and the CLI's
// exit status) can react without parsing text.
//
// Thread safety: Error is an immutable value type; copies may be used from any thread.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace chase {

enum class ErrorCode {
  kInvalidArgument,   // the caller passed something out of range or malformed
  kNotFound,          // a named thing (file, GPU, window, column) does not exist
  kAlreadyExists,     // e.g. a measurement window with that name is already open
  kUnavailable,       // a library/driver/sysfs interface is absent on this machine
  kPermissionDenied,  // the OS or driver refused; the message says how to get the permission
  kNotSupported,      // the device cannot do this (e.g. no energy counter before Volta)
  kDeviceLost,        // the GPU fell off the bus or stopped answering
  kParse,             // malformed input data (file and line in the message)
  kIo,                // reading or writing a file failed
  kInternal,          // anything else, including unexpected driver return codes
};

std::string_view to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace chase
