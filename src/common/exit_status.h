// Internal: the process exit status for a failure of each kind, shared by chase's programs (the
// CLI and chased) so a script sees the same codes from both.
#pragma once

#include "chase/error.h"

namespace chase {

// 2 bad input (kInvalidArgument, kParse), 77 permission (sysexits EX_NOPERM), 69 unavailable
// (EX_UNAVAILABLE), 1 otherwise.
int exit_status_for(ErrorCode code) noexcept;

}  // namespace chase
