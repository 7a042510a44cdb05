// chase/carbon_simulation.h — one training job simulated over a real carbon-intensity trace under a
// power-limit policy, with the same control code as live training (the PeriodDriver, the
// LimitPolicy, the selectors, the planner, CarbonSignal and the forecasters).
//
// Contract: the job is `epochs` epochs of a workload whose epoch time T(p) and energy E(p) per
// power limit p are a LimitProfile (one work unit = one epoch; epoch_profile() builds it from a
// Zeus trace). It starts at `start` and runs as a fluid: at limit p it progresses 1/T(p) epochs per
// second and draws E(p)/T(p) W, and it ends mid-period when its work is done. Policies
// (chase/limit_policy.h):
//   default  the profile's highest limit (or FixedLimitOptions::limit_w) throughout, no profiling;
//   static   one profiling epoch, then the selector's choice (zeus(η): "zeus") for the rest;
//   chase    one profiling epoch, then chase(η, CI_max) re-solved every `period` with the
//            intensity a forecaster (`forecast_model`, learning from the trace's past only)
//            predicts for the coming period; CI_max = the highest true intensity in the day
//            before `start` unless given;
//   planner  one profiling epoch, then the lookahead planner with its slowdown budget, re-planned
//            every period on the forecaster's predictions;
//   oracle   the planner with the trace's true future as its forecast.
// Deadline mode (the planner's or oracle's PauseOptions, docs/ALGORITHMS.md §3.7): a paused
// period does no work and draws the idle power (kIdle) or nothing (kRelease); a resume spends
// resume_s without work at the resume energy. The result counts the time paused and the resumes
// (time_s is the wall time from start to finish, pauses included). Refused in deadline mode
// (kInvalidArgument, saying what would work): a deadline shorter than the job at full speed (after
// the profiling epoch; the error gives the least slack that works), an idle power above the
// power at the minimum limit, a resume time longer than the slack.
// The profiling epoch runs at the mean time and energy over all limits (profiling_epoch(), Zeus
// artifact semantics, docs/ALGORITHMS.md §6) and counts as one epoch of work; without it
// (profiling_epoch false: a saved profile) the policy controls the job from its start. Every
// segment's emissions are its energy at the TRUE intensity of the trace; forecasts only drive
// decisions. The signal is a CarbonSignal over a replay of the trace, its clock advanced by the
// simulation, refreshed every period. Errors (chase::Error, kInvalidArgument, each naming the value
// and what to do): an unknown forecast model, a non-positive period or epoch count, η outside [0,
// 1], a negative slack, a start outside the trace, too little trace before the start (for CI_max or
// the forecaster), or a trace that ends before the job does.
//
// Thread safety: simulate_carbon() is reentrant (every simulation owns its clock, signal and
// forecaster); the inputs are only read.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "chase/carbon.h"
#include "chase/carbon_provider.h"
#include "chase/limit_policy.h"
#include "chase/limit_profile.h"
#include "chase/time.h"
#include "chase/zeus_trace.h"

namespace chase {

struct CarbonSimulationOptions {
  PolicyOptions policy = ChaseOptions{};  // planner and oracle: the slack counts from the default
                                          // policy's time; chase: CI_max 0 = the trace's maximum
                                          // in the day before start
  std::chrono::seconds period{std::chrono::minutes(30)};
  std::string forecast_model = "auto";  // chase and planner (make_forecaster names)
  // History the forecaster learns from, beyond what its features reach back.
  std::chrono::seconds fit_history{std::chrono::hours(28 * 24)};
  // When the carbon series carries exogenous columns (day-ahead weather and generation forecasts,
  // load_carbon_csv's `exogenous`): when they count as published, relative to the simulated now
  // (rolling 24 h ahead by default, or daily). The forecaster reads them for the hours published,
  // never beyond (CarbonSignal).
  ExogenousPublication exogenous_publication;
  // ... and how often the model reading them is refitted (CarbonSignalOptions).
  std::chrono::seconds inputs_refit_interval{std::chrono::hours(6)};
  double epochs = 40;
  // The policies that need a profile measure it in the first epoch (false: the profile is known
  // beforehand, as when live training reuses a saved profile, and every epoch is controlled).
  bool profiling_epoch = true;
  UtcTime start{};
  // Called with the epochs done at every control event (period boundary, planned switch), e.g.
  // for a progress line; may be empty. Not called per simulated step.
  std::function<void(double)> on_progress;
};

// One stretch of the run at one limit inside one control period.
struct SimulationSegment {
  UtcTime start{};
  double duration_s = 0;
  double power_limit_w = 0;  // 0 while profiling (every limit in turn)
  bool profiling = false;
  bool paused = false;            // deadline mode: paused (no work)
  bool resuming = false;          // deadline mode: reloading after a pause (no work)
  double carbon_intensity = 0;    // the true mean intensity over the segment, gCO2eq/kWh
  double forecast_intensity = 0;  // what the policy was told for the period (NaN: no signal)
  double epochs = 0;
  double energy_j = 0;
  double carbon_g = 0;
};

struct SimulationDecision {
  UtcTime time{};
  double power_limit_w = 0;  // the limit in force after the decision
  std::string reason;
};

struct CarbonSimulationResult {
  std::string policy;    // policy_label(): "default", "zeus", "chase", "planner", "oracle"
  std::string forecast;  // the forecaster's name, "perfect" (oracle) or "none"
  double carbon_g = 0;
  double energy_j = 0;
  double time_s = 0;
  double epochs = 0;
  double max_carbon_intensity = 0;  // CI_max used by chase (0 for other policies)
  double paused_s = 0;              // deadline mode: time paused
  std::size_t resumes = 0;          // deadline mode: resumes after a pause
  std::vector<SimulationSegment> timeline;
  std::vector<SimulationDecision> decisions;
};

CarbonSimulationResult simulate_carbon(const LimitProfile& epochs, const CarbonSeries& carbon,
                                       const CarbonSimulationOptions& options);

// "default", "zeus", "chase", "planner", "oracle".
const std::vector<std::string>& carbon_simulation_policies();

}  // namespace chase
