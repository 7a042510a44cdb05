#include "carbon/carbon_formats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "chase/error.h"

namespace chase::detail {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The header name with blanks trimmed, lower case, and "₂" (UTF-8 E2 82 82) written as "2".
std::string normalised(std::string_view name) {
  std::string text = lower(name);
  for (std::size_t at = text.find("\xE2\x82\x82"); at != std::string::npos;
       at = text.find("\xE2\x82\x82", at)) {
    text.replace(at, 3, "2");
  }
  const auto first = text.find_first_not_of(" \t");
  const auto last = text.find_last_not_of(" \t");
  return first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
}

std::optional<std::size_t> find_normalised(const std::vector<std::string>& header,
                                           std::string_view wanted) {
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (normalised(header[i]) == wanted) return i;
  }
  return std::nullopt;
}

// ---- CSV ----------------------------------------------------------------------------------

CsvLayout electricitymaps_layout(const std::vector<std::string>& header, bool value_named) {
  CsvLayout layout;
  const auto time = find_normalised(header, "datetime (utc)");
  const auto direct = find_normalised(header, "carbon intensity gco2eq/kwh (direct)");
  const auto lca = find_normalised(header, "carbon intensity gco2eq/kwh (lca)");
  if (!time || (!direct && !lca)) return layout;
  layout.format = "electricitymaps";
  layout.time_column = time;
  layout.estimated_column = find_normalised(header, "data estimated");
  if (value_named) return layout;
  if (direct && lca) {
    // The API's default is life-cycle, so a file and the live provider agree unless told not to.
    layout.value_column = lca;
    layout.notes.push_back(fmt::format(
        "Electricity Maps export with direct and life-cycle intensities: used '{}' (life-cycle, "
        "LCA, the API's default). For direct emissions pass the value column '{}' (--value-col "
        "on the command line).",
        header[*lca], header[*direct]));
  } else {
    layout.value_column = direct ? direct : lca;
    layout.notes.push_back(fmt::format("Electricity Maps export: used '{}' ({}).",
                                       header[*layout.value_column],
                                       direct ? "direct emissions" : "life-cycle, LCA"));
  }
  return layout;
}

CsvLayout watttime_layout(const std::vector<std::string>& header) {
  CsvLayout layout;
  const auto moer = find_normalised(header, "moer");
  const auto timestamp = find_normalised(header, "timestamp");
  const auto point_time = find_normalised(header, "point_time");
  const auto value = find_normalised(header, "value");
  bool metadata = false;
  for (const char* column :
       {"signal_type", "region", "ba", "units", "frequency", "market", "version", "datatype"}) {
    metadata = metadata || find_normalised(header, column).has_value();
  }
  if (moer && (timestamp || point_time)) {
    layout.time_column = point_time ? point_time : timestamp;
    layout.value_column = moer;
  } else if (point_time && value && metadata) {
    layout.time_column = point_time;
    layout.value_column = value;
  } else {
    return layout;  // a bare "point_time,value" file may be in any unit: read it as it is
  }
  layout.format = "watttime";
  layout.units_column = find_normalised(header, "units");
  if (layout.units_column) {
    layout.notes.push_back(
        "WattTime export: values converted to gCO2eq/kWh from the unit each row's 'units' column "
        "names. WattTime's MOER is a marginal rate, not an average intensity.");
  } else {
    layout.factor = kGPerKwhPerLbsPerMwh;
    layout.notes.push_back(fmt::format(
        "WattTime export: '{}' read as lbs CO2/MWh (WattTime's unit) and converted to gCO2eq/kWh "
        "(x {}). WattTime's MOER is a marginal rate, not an average intensity.",
        header[*layout.value_column], kGPerKwhPerLbsPerMwh));
  }
  return layout;
}

// ---- JSON ---------------------------------------------------------------------------------

class JsonReader {
 public:
  explicit JsonReader(std::filesystem::path path) : path_(std::move(path)) {}

  JsonSeries read() {
    std::ifstream in(path_, std::ios::binary);
    if (!in) {
      throw Error(ErrorCode::kIo, fmt::format("Cannot open '{}' for reading.", path_.string()));
    }
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(text.str());
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(ErrorCode::kParse,
                  fmt::format("'{}' looks like JSON but does not parse (syntax error at byte {}). "
                              "Download it again; a carbon-intensity CSV must not start with "
                              "'{{' or '['.",
                              path_.string(), e.byte));
    }
    try {
      return dispatch(json);
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorCode::kParse,
                  fmt::format("'{}' is a {} export of an unexpected shape ({}).", path_.string(),
                              series_.format.empty() ? "JSON" : series_.format, e.what()));
    }
  }

 private:
  JsonSeries dispatch(const nlohmann::json& json) {
    if (json.is_array()) {
      if (!json.empty() && json.front().is_object() && json.front().contains("forecastData")) {
        series_.format = "carbon-aware-sdk";
        for (const auto& forecast : json) sdk_records(forecast.at("forecastData"), true);
        return finish();
      }
      if (json.empty() || (json.front().is_object() && json.front().contains("rating"))) {
        series_.format = "carbon-aware-sdk";
        sdk_records(json, false);
        return finish();
      }
    } else if (json.is_object()) {
      if (json.contains("meta") && json.contains("data")) {
        series_.format = "watttime";
        return watttime(json);
      }
      if (json.contains("data") && ukgrid_shaped(json.at("data"))) {
        series_.format = "ukgrid";
        ukgrid(json.at("data"));
        return finish();
      }
      for (const char* list : {"history", "data", "forecast"}) {
        if (json.contains(list) && json.at(list).is_array()) {
          series_.format = "electricitymaps";
          electricitymaps(json.at(list), std::string_view(list) == "forecast");
          return finish();
        }
      }
    }
    throw Error(ErrorCode::kParse,
                fmt::format("'{}' is JSON but none of the recognised exports (UK Carbon Intensity "
                            "API, Carbon Aware SDK, Electricity Maps, WattTime). Convert it to a "
                            "CSV with a time and a value column.",
                            path_.string()));
  }

  JsonSeries finish() {
    if (series_.nulls > 0) {
      series_.notes.push_back(fmt::format("{} export: {} point(s) without a value were left out.",
                                          series_.format, series_.nulls));
    }
    return std::move(series_);
  }

  UtcTime time_of(const nlohmann::json& value, std::size_t index) const {
    if (value.is_string()) {
      const std::string text = value.get<std::string>();
      if (const auto time = parse_utc_time(text)) {
        if (!has_utc_offset(text)) {
          throw Error(ErrorCode::kParse,
                      fmt::format("'{}', point {}: the time '{}' has no UTC offset; a {} export "
                                  "always carries one, so the file was edited. Add the offset.",
                                  path_.string(), index, text, series_.format));
        }
        return *time;
      }
    }
    throw Error(ErrorCode::kParse, fmt::format("'{}', point {}: {} is not an ISO 8601 time.",
                                               path_.string(), index, value.dump()));
  }

  // Adds a point; null values are counted and left out.
  void add(const nlohmann::json& time, const nlohmann::json& value, bool estimated,
           std::size_t index, double factor = 1) {
    if (value.is_null()) {
      ++series_.nulls;
      return;
    }
    if (!value.is_number()) {
      throw Error(ErrorCode::kParse, fmt::format("'{}', point {}: {} is not a number.",
                                                 path_.string(), index, value.dump()));
    }
    series_.records.push_back({time_of(time, index), value.get<double>() * factor, estimated,
                               series_.records.size() + series_.nulls});
  }

  static bool ukgrid_shaped(const nlohmann::json& data) {
    const nlohmann::json& first = data.is_array() ? (data.empty() ? data : data.front()) : data;
    return first.is_object() && (first.contains("intensity") || first.contains("regionid"));
  }

  void ukgrid(const nlohmann::json& data) {
    const auto period = [&](const nlohmann::json& item) {
      const auto& intensity = item.at("intensity");
      const auto actual = intensity.find("actual");
      const std::size_t index = series_.records.size() + series_.nulls;
      if (actual != intensity.end() && !actual->is_null()) {
        add(item.at("from"), *actual, false, index);
      } else {
        add(item.at("from"), intensity.at("forecast"), true, index);
      }
    };
    const auto list = data.is_array() ? data : nlohmann::json::array({data});
    for (const auto& item : list) {
      if (item.contains("data")) {
        for (const auto& inner : item.at("data")) period(inner);
      } else {
        period(item);
      }
    }
  }

  void sdk_records(const nlohmann::json& list, bool forecast) {
    for (const auto& record : list) {
      add(record.at(forecast ? "timestamp" : "time"), record.at(forecast ? "value" : "rating"),
          forecast, series_.records.size() + series_.nulls);
    }
  }

  void electricitymaps(const nlohmann::json& list, bool forecast) {
    for (const auto& item : list) {
      add(item.at("datetime"), item.at("carbonIntensity"),
          forecast || item.value("isEstimated", false), series_.records.size() + series_.nulls);
    }
  }

  JsonSeries watttime(const nlohmann::json& json) {
    const auto& units = json.at("meta").at("units");
    const std::string unit = units.is_string() ? units.get<std::string>() : units.dump();
    const auto factor = watttime_unit_factor(unit);
    if (!factor) {
      throw Error(ErrorCode::kParse,
                  fmt::format("'{}' is a WattTime export in '{}', which chase cannot convert to "
                              "gCO2eq/kWh (e.g. a percentile signal). Export the co2_moer signal.",
                              path_.string(), unit));
    }
    for (const auto& item : json.at("data")) {
      add(item.at("point_time"), item.at("value"), false, series_.records.size() + series_.nulls,
          *factor);
    }
    series_.notes.push_back(fmt::format(
        "WattTime export: converted from {} to gCO2eq/kWh. WattTime's MOER is a marginal rate, "
        "not an average intensity.",
        unit));
    return finish();
  }

  std::filesystem::path path_;
  JsonSeries series_;
};

}  // namespace

bool looks_like_json(const std::filesystem::path& path) {
  // Sniffing reads the file, which would consume a pipe, a FIFO or a process substitution before
  // the loader reads it: those are taken as CSV (the JSON exports are downloaded files).
  std::error_code not_regular;
  if (!std::filesystem::is_regular_file(path, not_regular)) return false;
  std::ifstream in(path, std::ios::binary);
  char c = 0;
  bool start = true;
  while (in.get(c)) {
    // A UTF-8 byte order mark.
    if (start && static_cast<unsigned char>(c) == 0xEF) {
      char rest[2] = {};
      in.read(rest, 2);
      start = false;
      continue;
    }
    start = false;
    if (std::isspace(static_cast<unsigned char>(c)) != 0) continue;
    return c == '{' || c == '[';
  }
  return false;
}

JsonSeries read_carbon_json(const std::filesystem::path& path) { return JsonReader(path).read(); }

CsvLayout detect_csv_layout(const std::vector<std::string>& header, bool value_named) {
  if (auto layout = electricitymaps_layout(header, value_named); !layout.format.empty()) {
    return layout;
  }
  return watttime_layout(header);
}

std::optional<double> watttime_unit_factor(std::string_view unit) {
  if (unit == "lbs_co2_per_mwh") return kGPerKwhPerLbsPerMwh;
  if (unit == "kg_co2_per_mwh" || unit == "g_co2_per_kwh") return 1.0;
  return std::nullopt;
}

bool has_utc_offset(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  if (text.empty()) return false;
  if (text.back() == 'Z' || text.back() == 'z') return true;
  // A sign after the date ("YYYY-MM-DD" holds the first ten characters) starts an offset.
  return text.size() > 10 && text.find_first_of("+-", 10) != std::string_view::npos;
}

}  // namespace chase::detail
