// chase/selector.h — choosing a GPU power limit from a measured profile.
//
// Contract (docs/ALGORITHMS.md §3): per limit p of a LimitProfile, T(p) and E(p) are
// the time and energy of the same work, P(p) = E/T the average power, X(p) = 1/T the throughput and
// MaxPower = max limit × GPU count. Each selector scores every point (Candidate::cost, lower is
// better) and picks the minimum; ties go to the higher limit.
//   zeus(η):        cost = η·E + (1−η)·MaxPower·T, η ∈ [0, 1]
//   energy:         cost = E
//   time:           cost = T
//   slowdown(f):    the lowest limit with T(p) ≤ f·T(p_max), f ≥ 1; cost = T(p) / T(p_max)
//   chase(η, CImax): cost = [η·P·CI + (1−η)·MaxPower·CImax] / X, with CI the intensity forecast for
//                   the coming period (SelectionContext::carbon_intensity), CImax > 0 the
//                   normaliser
// Bad parameters throw kInvalidArgument when the selector is made; a chase selector asked to select
// without a carbon intensity throws kInvalidArgument.
//
// Thread safety: selectors are immutable; select() may be called concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chase/limit_profile.h"

namespace chase {

struct Candidate {
  double power_limit_w = 0;
  double time_s = 0;
  double energy_j = 0;
  double avg_power_w = 0;
  double cost = 0;
};

struct Selection {
  double power_limit_w = 0;
  std::vector<Candidate> candidates;  // every point, in the profile's order (descending limit)
};

struct SelectionContext {
  std::optional<double> carbon_intensity;  // gCO2eq/kWh expected over the coming period
};

class PowerLimitSelector {
 public:
  virtual ~PowerLimitSelector() = default;
  virtual std::string_view name() const noexcept = 0;  // "zeus", "energy", "time", ...
  virtual std::string describe() const = 0;            // with parameters: "zeus(eta=0.5)"
  virtual Selection select(const LimitProfile& profile,
                           const SelectionContext& context = {}) const = 0;
};

std::unique_ptr<PowerLimitSelector> make_zeus_selector(double eta);
std::unique_ptr<PowerLimitSelector> make_energy_selector();
std::unique_ptr<PowerLimitSelector> make_time_selector();
std::unique_ptr<PowerLimitSelector> make_slowdown_selector(double factor);
std::unique_ptr<PowerLimitSelector> make_chase_selector(double eta, double max_carbon_intensity);

}  // namespace chase
