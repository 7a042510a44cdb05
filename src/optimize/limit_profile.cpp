// LimitProfile and its files (contract: chase/limit_profile.h).
#include "chase/limit_profile.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>

#include "chase/error.h"
#include "common/csv.h"

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
                                               reader.where(column), text));
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

double json_number(const nlohmann::json& object, std::string_view key, const std::string& where) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: '{}' is missing or not a number", where, key));
  }
  return it->get<double>();
}

// The optional fields of the JSON: absent or null gives `fallback`; a value of the wrong type is a
// kParse naming the field (nlohmann's own type_error would escape as a bare exception, and a
// negative count would silently wrap around to a huge size_t).
std::string json_optional_string(const nlohmann::json& doc, std::string_view key,
                                 const std::string& where) {
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return "";
  if (!it->is_string()) {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: '{}' is {}, not a string", where, key, it->dump()));
  }
  return it->get<std::string>();
}

std::size_t json_optional_count(const nlohmann::json& doc, std::string_view key,
                                std::size_t fallback, const std::string& where) {
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return fallback;
  if (!it->is_number_unsigned()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: '{}' is {}, not a whole number 0 or more",
                                               where, key, it->dump()));
  }
  return it->get<std::size_t>();
}

double json_optional_number(const nlohmann::json& doc, std::string_view key, double fallback,
                            const std::string& where) {
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return fallback;
  return json_number(doc, key, where);
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
                              reader.where(columns.window_name), fields[columns.window_name]));
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

LimitProfile load_limit_profile_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    throw Error(ErrorCode::kIo, fmt::format("cannot open power-limit profile {}", path.string()));
  }
  const auto doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  const auto where = path.string();
  if (doc.is_discarded() || !doc.is_object()) {
    throw Error(ErrorCode::kParse, fmt::format("{}: not a JSON object", where));
  }
  if (json_optional_string(doc, "format", where) != kJsonFormat) {
    throw Error(ErrorCode::kParse, fmt::format("{}: 'format' is not \"{}\"", where, kJsonFormat));
  }
  const auto version = doc.find("version");
  if (version == doc.end() || !version->is_number() || version->get<double>() != kJsonVersion) {
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
    const auto at = fmt::format("{}: points[{}]", where, i);
    const auto& p = (*points_json)[i];
    points.push_back({json_number(p, "power_limit_w", at), json_number(p, "time_s", at),
                      json_number(p, "energy_j", at)});
  }
  LimitProfileInfo info;
  info.gpu_model = json_optional_string(doc, "gpu_model", where);
  info.gpu_count = json_optional_count(doc, "gpu_count", 1, where);
  info.job_id = json_optional_string(doc, "job_id", where);
  info.batch_size = json_optional_count(doc, "batch_size", 0, where);
  info.steps_per_window = json_optional_count(doc, "steps_per_window", 0, where);
  const double max_power_limit_w = json_optional_number(doc, "max_power_limit_w", 0, where);
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
  auto temporary = path;
  temporary += fmt::format(".tmp{}", ::getpid());
  {
    std::ofstream out(temporary);
    out << doc.dump(2) << '\n';
    if (!out.flush()) {
      throw Error(ErrorCode::kIo,
                  fmt::format("cannot write power-limit profile {}", temporary.string()));
    }
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) {
    std::filesystem::remove(temporary, error);
    throw Error(ErrorCode::kIo, fmt::format("cannot write power-limit profile {}", path.string()));
  }
}

}  // namespace chase
