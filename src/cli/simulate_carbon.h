// Internal (CLI): what `chase simulate carbon`, its --sweep and its reporters share — the job being
// simulated. The sweep itself is the library's (chase/carbon_sweep.h); the reporters are
// cli/carbon_reporters.h.
#pragma once

#include <string>

#include "chase/carbon.h"
#include "chase/limit_profile.h"

namespace chase::cli {

// The job and the trace every simulation of one command shares.
struct CarbonJob {
  std::string description;  // e.g. "imagenet/resnet50 batch 256 on a40"
  std::string carbon_file;
  LimitProfile epochs;
  CarbonSeries carbon;
};

}  // namespace chase::cli
