#include "chase/simulated_gpu.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "chase/error.h"
#include "common/bounded_input.h"
#include "common/csv.h"
#include "common/json_fields.h"

namespace chase {
namespace {

void check_point(const PowerProfilePoint& point, const std::string& where) {
  const bool valid = std::isfinite(point.power_limit_w) && point.power_limit_w > 0 &&
                     std::isfinite(point.throughput) && point.throughput > 0 &&
                     std::isfinite(point.avg_power_w) && point.avg_power_w > 0;
  if (!valid) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: power limit, throughput and average power must be positive "
                            "numbers (got {} W, {}, {} W)",
                            where, point.power_limit_w, point.throughput, point.avg_power_w));
  }
}

PowerProfile load_json_profile(const std::filesystem::path& path) {
  detail::BoundedInput in(path);  // throws kIo naming the file when it cannot be read
  const auto doc = nlohmann::json::parse(in.stream(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    throw Error(ErrorCode::kParse,
                fmt::format("'{}' is not valid JSON. Expected {{\"points\": [{{\"power_limit_w\", "
                            "\"throughput\", \"avg_power_w\"}}, ...]}}",
                            path.string()));
  }
  const JsonFields fields(doc, path.string());
  const auto points_json = doc.find("points");
  if (points_json == doc.end() || !points_json->is_array()) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: \"points\" is missing or not a list. Expected {{\"points\": "
                            "[{{\"power_limit_w\", \"throughput\", \"avg_power_w\"}}, ...]}}",
                            path.string()));
  }
  std::vector<PowerProfilePoint> points;
  for (std::size_t i = 0; i < points_json->size(); ++i) {
    const JsonFields point((*points_json)[i], fmt::format("{}: points[{}]", path.string(), i));
    points.push_back({point.required_number("power_limit_w"), point.required_number("throughput"),
                      point.required_number("avg_power_w")});
  }
  return PowerProfile(std::move(points), fields.text("gpu").value_or(""),
                      fields.text("workload").value_or(""),
                      fields.text("throughput_unit").value_or("samples/s"));
}

PowerProfile load_csv_profile(const std::filesystem::path& path) {
  csv::Reader reader(path);
  const char* names[] = {"power_limit_w", "throughput", "avg_power_w"};
  std::size_t columns[3];
  for (int i = 0; i < 3; ++i) {
    const auto column = reader.column(names[i]);
    if (!column) {
      throw Error(ErrorCode::kParse,
                  fmt::format("'{}' has no column '{}': a CSV profile needs the header "
                              "power_limit_w,throughput,avg_power_w",
                              path.string(), names[i]));
    }
    columns[i] = *column;
  }
  std::vector<PowerProfilePoint> points;
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    double values[3];
    for (int i = 0; i < 3; ++i) {
      const auto value =
          columns[i] < fields.size() ? csv::parse_double(fields[columns[i]]) : std::nullopt;
      if (!value) {
        throw Error(ErrorCode::kParse,
                    fmt::format("{}: expected a number", reader.where(columns[i])));
      }
      values[i] = *value;
    }
    points.push_back({values[0], values[1], values[2]});
    check_point(points.back(), reader.where());
  }
  return PowerProfile(std::move(points));
}

}  // namespace

PowerProfile::PowerProfile(std::vector<PowerProfilePoint> points, std::string gpu,
                           std::string workload, std::string throughput_unit)
    : points_(std::move(points)),
      gpu_(std::move(gpu)),
      workload_(std::move(workload)),
      throughput_unit_(std::move(throughput_unit)) {
  if (points_.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "a power profile needs at least one point");
  }
  for (std::size_t i = 0; i < points_.size(); ++i) {
    check_point(points_[i], fmt::format("power profile point {}", i));
  }
  std::sort(points_.begin(), points_.end(),
            [](const auto& a, const auto& b) { return a.power_limit_w < b.power_limit_w; });
  for (std::size_t i = 1; i < points_.size(); ++i) {
    if (points_[i].power_limit_w == points_[i - 1].power_limit_w) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("power profile has two points at {} W", points_[i].power_limit_w));
    }
  }
}

PowerProfile PowerProfile::load(const std::filesystem::path& path) {
  if (path.extension() == ".json") return load_json_profile(path);
  if (path.extension() == ".csv") return load_csv_profile(path);
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("'{}': a power profile must be a .json or .csv file", path.string()));
}

double PowerProfile::min_limit_w() const { return points_.front().power_limit_w; }
double PowerProfile::max_limit_w() const { return points_.back().power_limit_w; }
double PowerProfile::throughput_at(double power_limit_w) const {
  return interpolate(power_limit_w).throughput;
}
double PowerProfile::power_at(double power_limit_w) const {
  return interpolate(power_limit_w).avg_power_w;
}

PowerProfilePoint PowerProfile::interpolate(double power_limit_w) const {
  if (power_limit_w <= points_.front().power_limit_w) return points_.front();
  if (power_limit_w >= points_.back().power_limit_w) return points_.back();
  const auto upper = std::lower_bound(
      points_.begin(), points_.end(), power_limit_w,
      [](const PowerProfilePoint& p, double limit) { return p.power_limit_w < limit; });
  const auto lower = upper - 1;
  const double t =
      (power_limit_w - lower->power_limit_w) / (upper->power_limit_w - lower->power_limit_w);
  return {power_limit_w, std::lerp(lower->throughput, upper->throughput, t),
          std::lerp(lower->avg_power_w, upper->avg_power_w, t)};
}

PowerProfile synthetic_demo_profile() {
  // Smooth made-up curves with the shape of real ResNet-50 training on an A40: throughput
  // saturates above ~200 W while power keeps rising, so lower limits save energy for a little
  // time. Not a measurement — the name says so wherever it is printed.
  std::vector<PowerProfilePoint> points;
  for (double limit = 100; limit <= 300; limit += 25) {
    const double throughput = 330.0 * (1.0 - std::exp(-(limit - 70.0) / 40.0));
    const double power = 250.0 - 140.0 * std::exp(-(limit - 100.0) / 120.0);
    points.push_back({limit, throughput, std::min(power, limit)});
  }
  return PowerProfile(std::move(points), "synthetic A40-like GPU",
                      "synthetic ResNet-50-like training", "samples/s");
}

SimulatedGpuBackend::SimulatedGpuBackend(std::vector<SimulatedGpuSpec> specs,
                                         std::shared_ptr<Clock> clock)
    : specs_(std::move(specs)), clock_(clock ? std::move(clock) : system_clock()) {
  const auto now = clock_->monotonic();
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const auto& spec = specs_[i];
    if (spec.profile.points().empty()) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("simulated GPU {} ({}) has an empty power profile", i, spec.name));
    }
    GpuInfo info;
    info.index = i;
    info.hardware_index = static_cast<unsigned>(i);
    info.uuid = fmt::format("SIM-{}", i);
    info.name = spec.name;
    info.architecture = spec.architecture;
    info.min_power_limit_w = spec.profile.min_limit_w();
    info.max_power_limit_w = spec.profile.max_limit_w();
    info.default_power_limit_w = info.max_power_limit_w;
    info.has_energy_counter = true;
    infos_.push_back(std::move(info));
    states_.push_back({infos_.back().default_power_limit_w, false, 0.0, now});
  }
}

double SimulatedGpuBackend::power_locked(std::size_t gpu) const {
  const auto& state = states_[gpu];
  return state.busy ? specs_[gpu].profile.power_at(state.limit_w) : specs_[gpu].idle_power_w;
}

void SimulatedGpuBackend::integrate_locked(std::size_t gpu) {
  auto& state = states_[gpu];
  const auto now = clock_->monotonic();
  const double elapsed_s = std::chrono::duration<double>(now - state.since).count();
  state.energy_j += power_locked(gpu) * elapsed_s;
  state.since = now;
}

double SimulatedGpuBackend::energy_j(std::size_t gpu) {
  checked_gpu(infos_, gpu);
  std::lock_guard lock(mutex_);
  integrate_locked(gpu);
  return states_[gpu].energy_j;
}

double SimulatedGpuBackend::power_w(std::size_t gpu) {
  checked_gpu(infos_, gpu);
  std::lock_guard lock(mutex_);
  return power_locked(gpu);
}

double SimulatedGpuBackend::power_limit_w(std::size_t gpu) {
  checked_gpu(infos_, gpu);
  std::lock_guard lock(mutex_);
  return states_[gpu].limit_w;
}

void SimulatedGpuBackend::set_power_limit_w(std::size_t gpu, double watts) {
  check_power_limit(checked_gpu(infos_, gpu), watts);
  std::lock_guard lock(mutex_);
  integrate_locked(gpu);  // energy so far accrued at the old limit
  states_[gpu].limit_w = watts;
}

void SimulatedGpuBackend::set_busy(std::size_t gpu, bool busy) {
  checked_gpu(infos_, gpu);
  std::lock_guard lock(mutex_);
  integrate_locked(gpu);
  states_[gpu].busy = busy;
}

void SimulatedGpuBackend::set_all_busy(bool busy) {
  for (std::size_t gpu = 0; gpu < infos_.size(); ++gpu) set_busy(gpu, busy);
}

double SimulatedGpuBackend::throughput(std::size_t gpu) {
  checked_gpu(infos_, gpu);
  std::lock_guard lock(mutex_);
  const auto& state = states_[gpu];
  return state.busy ? specs_[gpu].profile.throughput_at(state.limit_w) : 0.0;
}

const PowerProfile& SimulatedGpuBackend::profile(std::size_t gpu) const {
  checked_gpu(infos_, gpu);
  return specs_[gpu].profile;
}

std::shared_ptr<SimulatedGpuBackend> make_simulated_gpus(std::size_t n, const PowerProfile& profile,
                                                         std::shared_ptr<Clock> clock) {
  SimulatedGpuSpec spec;
  spec.name = profile.gpu().empty() ? "Simulated GPU" : profile.gpu();
  spec.profile = profile;
  return std::make_shared<SimulatedGpuBackend>(std::vector<SimulatedGpuSpec>(n, spec),
                                               std::move(clock));
}

}  // namespace chase
