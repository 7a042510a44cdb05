// LimitProfile and its files (contract: chase/limit_profile.h).
#include "chase/limit_profile.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "chase/error.h"
#include "common/bounded_input.h"
#include "common/csv.h"
#include "common/json_fields.h"
#include "common/text.h"

namespace chase {
namespace {

constexpr std::string_view kJsonFormat = "chase-limit-profile";
constexpr int kJsonVersion = 1;

void check_point(const LimitMeasurement& point) {
  const auto bad = [&](std::string_view what) {
    return Error(ErrorCode::kInvalidArgument,
                 fmt::format("power-limit profile point at {} W: {} (time {} s, energy {} J); "
                             "time and energy must be finite and positive",
                             point.power_limit_w, what, point.time_s, point.energy_j));
  };
  if (!std::isfinite(point.power_limit_w) || point.power_limit_w <= 0) throw bad("bad power limit");
  if (!std::isfinite(point.time_s) || point.time_s <= 0) throw bad("bad time");
  if (!std::isfinite(point.energy_j) || point.energy_j <= 0) throw bad("bad energy");
}

// The number that ends a Zeus window name ("__GlobalPowerLimitOptimizer_250" → 250).
std::optional<double> limit_from_window_name(std::string_view name) {
  const auto underscore = name.rfind('_');
  if (underscore == std::string_view::npos) return std::nullopt;
  const auto value = csv::parse_double(name.substr(underscore + 1));
  if (!value || !std::isfinite(*value) || *value <= 0) return std::nullopt;
  return value;
}

double parse_positive(const csv::Reader& reader, std::size_t column, const std::string& text) {
  const auto value = csv::parse_double(text);
  if (!value || !std::isfinite(*value) || *value < 0) {
    throw Error(ErrorCode::kParse, fmt::format("{}: '{}' is not a finite non-negative number",
                                               reader.where(column), escape_untrusted(text, 80)));
  }
  return *value;
}

// Columns of a Zeus monitor log: the window name, its time and one energy column per GPU.
struct ZeusColumns {
  std::size_t window_name = 0;
  std::size_t elapsed_time = 0;
  std::vector<std::size_t> energy;
};

ZeusColumns find_zeus_columns(const csv::Reader& reader) {
  ZeusColumns columns;
  const auto require = [&](std::string_view name) {
    const auto index = reader.column(name);
    if (!index) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}:1: no column '{}'; a Zeus monitor log has the columns "
                              "start_time,window_name,elapsed_time,gpu0_energy[,gpu1_energy,...]",
                              reader.path().string(), name));
    }
    return *index;
  };
  columns.window_name = require("window_name");
  columns.elapsed_time = require("elapsed_time");
  for (std::size_t gpu = 0;; ++gpu) {
    const auto index = reader.column(fmt::format("gpu{}_energy", gpu));
    if (!index) break;
    columns.energy.push_back(*index);
  }
  if (columns.energy.empty()) require("gpu0_energy");
  return columns;
}

}  // namespace

LimitProfile::LimitProfile(std::vector<LimitMeasurement> points, LimitProfileInfo info,
                           double max_power_limit_w)
    : points_(std::move(points)), info_(std::move(info)) {
  if (points_.empty()) {
    throw Error(ErrorCode::kInvalidArgument, "a power-limit profile needs at least one point");
  }
  if (info_.gpu_count == 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "a power-limit profile needs a GPU count of at least 1");
  }
  for (const auto& point : points_) check_point(point);
  std::sort(points_.begin(), points_.end(),
            [](const auto& a, const auto& b) { return a.power_limit_w > b.power_limit_w; });
  for (std::size_t i = 1; i < points_.size(); ++i) {
    if (points_[i].power_limit_w == points_[i - 1].power_limit_w) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("the power-limit profile measures {} W twice; keep one measurement "
                              "per limit",
                              points_[i].power_limit_w));
    }
  }
  const double highest = points_.front().power_limit_w;
  if (max_power_limit_w == 0) max_power_limit_w = highest;
  if (!std::isfinite(max_power_limit_w) || max_power_limit_w < highest) {
    throw Error(
        ErrorCode::kInvalidArgument,
        fmt::format("the maximum power limit {} W is below the highest limit measured, {} W",
                    max_power_limit_w, highest));
  }
  max_power_limit_w_ = max_power_limit_w;
}

LimitProfile load_zeus_monitor_csv(const std::filesystem::path& path) {
  csv::Reader reader(path);
  const auto columns = find_zeus_columns(reader);
  std::vector<LimitMeasurement> points;
  std::map<double, std::size_t> line_of_limit;
  std::vector<std::string> fields;
  while (reader.next(fields)) {
    if (fields.size() != reader.header().size()) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: {} fields where the header has {}", reader.where(),
                              fields.size(), reader.header().size()));
    }
    const auto limit = limit_from_window_name(fields[columns.window_name]);
    if (!limit) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: window name '{}' does not end with a power limit in W (like "
                              "'__GlobalPowerLimitOptimizer_250')",
                              reader.where(columns.window_name),
                              escape_untrusted(fields[columns.window_name], 80)));
    }
    const auto [it, fresh] = line_of_limit.emplace(*limit, reader.line());
    if (!fresh) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: {} W was already measured on line {}",
                              reader.where(columns.window_name), *limit, it->second));
    }
    LimitMeasurement point{
        *limit, parse_positive(reader, columns.elapsed_time, fields[columns.elapsed_time]), 0};
    for (const auto column : columns.energy) {
      point.energy_j += parse_positive(reader, column, fields[column]);
    }
    if (point.time_s <= 0 || point.energy_j <= 0) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: a window with zero time or energy", reader.where()));
    }
    points.push_back(point);
  }
  if (points.empty()) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: no profiling windows after the header", path.string()));
  }
  LimitProfileInfo info;
  info.gpu_count = columns.energy.size();
  info.job_id = path.stem().string();
  return LimitProfile(std::move(points), std::move(info));
}

// A profile's GPU count: 1 to this many (a count beyond it is a corrupt file, not a cluster).
constexpr std::uint64_t kMaxProfileGpus = 1 << 20;

LimitProfile load_limit_profile_json(const std::filesystem::path& path) {
  detail::BoundedInput in(path);  // throws kIo naming the file when it cannot be read
  const auto doc = nlohmann::json::parse(in.stream(), nullptr, /*allow_exceptions=*/false);
  const auto where = path.string();
  if (doc.is_discarded() || !doc.is_object()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: not a JSON object", where));
  }
  const JsonFields fields(doc, where);
  if (fields.text("format") != kJsonFormat) {
    throw Error(ErrorCode::kParse, fmt::format("{}: 'format' is not \"{}\"", where, kJsonFormat));
  }
  if (fields.count("version") != static_cast<std::uint64_t>(kJsonVersion)) {
    throw Error(ErrorCode::kParse, fmt::format("{}: unsupported version (this chase reads "
                                               "version {})",
                                               where, kJsonVersion));
  }
  const auto points_json = doc.find("points");
  if (points_json == doc.end() || !points_json->is_array()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: 'points' is missing or not a list", where));
  }
  std::vector<LimitMeasurement> points;
  for (std::size_t i = 0; i < points_json->size(); ++i) {
    const JsonFields point((*points_json)[i], fmt::format("{}: points[{}]", where, i));
    points.push_back({point.required_number("power_limit_w"), point.required_number("time_s"),
                      point.required_number("energy_j")});
  }
  LimitProfileInfo info;
  info.gpu_model = fields.text("gpu_model").value_or("");
  info.gpu_count = fields.count("gpu_count", 1, kMaxProfileGpus).value_or(1);
  info.job_id = fields.text("job_id").value_or("");
  info.batch_size = fields.count("batch_size").value_or(0);
  info.steps_per_window = fields.count("steps_per_window").value_or(0);
  const double max_power_limit_w = fields.number("max_power_limit_w", 0).value_or(0.0);
  try {
    return LimitProfile(std::move(points), std::move(info), max_power_limit_w);
  } catch (const Error& e) {
    throw Error(ErrorCode::kParse, fmt::format("{}: {}", where, e.what()));
  }
}

LimitProfile load_limit_profile(const std::filesystem::path& path) {
  const auto extension = path.extension().string();
  if (extension == ".json") return load_limit_profile_json(path);
  if (extension == ".csv") return load_zeus_monitor_csv(path);
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("{}: unknown profile format '{}'; give a .json profile written by chase "
                          "or a .csv Zeus monitor log",
                          path.string(), extension));
}

void save_limit_profile(const LimitProfile& profile, const std::filesystem::path& path) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : profile.points()) {
    points.push_back(
        {{"power_limit_w", p.power_limit_w}, {"time_s", p.time_s}, {"energy_j", p.energy_j}});
  }
  const auto& info = profile.info();
  const nlohmann::json doc = {{"format", kJsonFormat},
                              {"version", kJsonVersion},
                              {"gpu_model", info.gpu_model},
                              {"gpu_count", info.gpu_count},
                              {"job_id", info.job_id},
                              {"batch_size", info.batch_size},
                              {"steps_per_window", info.steps_per_window},
                              {"max_power_limit_w", profile.max_power_limit_w()},
                              {"points", points}};
  write_json_file_atomically(path, doc, "power-limit profile");
}

}  // namespace chase
