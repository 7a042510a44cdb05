// Power-limit selectors (contract: chase/selector.h; formulas: docs/ALGORITHMS.md §3).
#include "chase/selector.h"

#include <fmt/format.h>

#include <cmath>
#include <functional>

#include "chase/error.h"

namespace chase {
namespace {

Candidate candidate_for(const LimitMeasurement& point) {
  return {point.power_limit_w, point.time_s, point.energy_j, point.avg_power_w(), 0};
}

// The candidate of least cost; candidates run from the highest limit down, so keeping the first
// of equal costs gives ties to the higher limit.
double cheapest_limit(const std::vector<Candidate>& candidates) {
  const Candidate* best = &candidates.front();
  for (const auto& candidate : candidates) {
    if (candidate.cost < best->cost) best = &candidate;
  }
  return best->power_limit_w;
}

// A selector that scores each point with `cost` and takes the cheapest.
class CostSelector final : public PowerLimitSelector {
 public:
  using CostFunction =
      std::function<double(const Candidate&, const LimitProfile&, const SelectionContext&)>;
  CostSelector(std::string_view name, std::string description, CostFunction cost)
      : name_(name), description_(std::move(description)), cost_(std::move(cost)) {}

  std::string_view name() const noexcept override { return name_; }
  std::string describe() const override { return description_; }

  Selection select(const LimitProfile& profile, const SelectionContext& context) const override {
    Selection selection;
    for (const auto& point : profile.points()) {
      auto candidate = candidate_for(point);
      candidate.cost = cost_(candidate, profile, context);
      selection.candidates.push_back(candidate);
    }
    selection.power_limit_w = cheapest_limit(selection.candidates);
    return selection;
  }

 private:
  std::string_view name_;
  std::string description_;
  CostFunction cost_;
};

class SlowdownSelector final : public PowerLimitSelector {
 public:
  explicit SlowdownSelector(double factor) : factor_(factor) {}

  std::string_view name() const noexcept override { return "slowdown"; }
  std::string describe() const override { return fmt::format("slowdown(factor={})", factor_); }

  Selection select(const LimitProfile& profile, const SelectionContext&) const override {
    const double reference_s = profile.highest_limit_point().time_s;
    Selection selection;
    selection.power_limit_w = profile.highest_limit_point().power_limit_w;
    for (const auto& point : profile.points()) {  // highest limit first: the last fit is lowest
      auto candidate = candidate_for(point);
      candidate.cost = point.time_s / reference_s;
      if (candidate.cost <= factor_) selection.power_limit_w = point.power_limit_w;
      selection.candidates.push_back(candidate);
    }
    return selection;
  }

 private:
  double factor_;
};

void check_eta(double eta) {
  if (!(eta >= 0 && eta <= 1)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("eta must be between 0 (fastest) and 1 (least energy), not {}", eta));
  }
}

}  // namespace

std::unique_ptr<PowerLimitSelector> make_zeus_selector(double eta) {
  check_eta(eta);
  return std::make_unique<CostSelector>(
      "zeus", fmt::format("zeus(eta={})", eta),
      [eta](const Candidate& c, const LimitProfile& profile, const SelectionContext&) {
        return eta * c.energy_j + (1 - eta) * profile.max_power_w() * c.time_s;
      });
}

std::unique_ptr<PowerLimitSelector> make_energy_selector() {
  return std::make_unique<CostSelector>(
      "energy", "energy",
      [](const Candidate& c, const LimitProfile&, const SelectionContext&) { return c.energy_j; });
}

std::unique_ptr<PowerLimitSelector> make_time_selector() {
  return std::make_unique<CostSelector>(
      "time", "time",
      [](const Candidate& c, const LimitProfile&, const SelectionContext&) { return c.time_s; });
}

std::unique_ptr<PowerLimitSelector> make_slowdown_selector(double factor) {
  if (!(factor >= 1) || !std::isfinite(factor)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("the slowdown factor must be a number ≥ 1 (1.1 allows 10 % longer), "
                            "not {}",
                            factor));
  }
  return std::make_unique<SlowdownSelector>(factor);
}

std::unique_ptr<PowerLimitSelector> make_chase_selector(double eta, double max_carbon_intensity) {
  check_eta(eta);
  if (!(max_carbon_intensity > 0) || !std::isfinite(max_carbon_intensity)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("CI_max must be a positive intensity in gCO2eq/kWh, not {}",
                            max_carbon_intensity));
  }
  return std::make_unique<CostSelector>(
      "chase", fmt::format("chase(eta={}, ci_max={})", eta, max_carbon_intensity),
      [eta, max_carbon_intensity](const Candidate& c, const LimitProfile& profile,
                                  const SelectionContext& context) {
        if (!context.carbon_intensity || !(*context.carbon_intensity >= 0)) {
          throw Error(ErrorCode::kInvalidArgument,
                      "the chase selector needs the carbon intensity of the coming period");
        }
        // [η·P·CI + (1−η)·MaxPower·CImax] / X with X = 1 / T.
        return (eta * c.avg_power_w * *context.carbon_intensity +
                (1 - eta) * profile.max_power_w() * max_carbon_intensity) *
               c.time_s;
      });
}

}  // namespace chase
