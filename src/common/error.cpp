#include "chase/error.h"

#include "common/exit_status.h"

namespace chase {

int exit_status_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParse:
      return 2;
    case ErrorCode::kPermissionDenied:
      return 77;  // sysexits EX_NOPERM
    case ErrorCode::kUnavailable:
      return 69;  // EX_UNAVAILABLE
    default:
      return 1;
  }
}

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid argument";
    case ErrorCode::kNotFound:
      return "not found";
    case ErrorCode::kAlreadyExists:
      return "already exists";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kPermissionDenied:
      return "permission denied";
    case ErrorCode::kNotSupported:
      return "not supported";
    case ErrorCode::kDeviceLost:
      return "device lost";
    case ErrorCode::kParse:
      return "parse error";
    case ErrorCode::kIo:
      return "I/O error";
    case ErrorCode::kInternal:
      return "internal error";
  }
  return "unknown error";
}

}  // namespace chase
