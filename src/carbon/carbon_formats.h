// Internal: the public carbon-intensity export formats load_carbon_csv() recognises without being
// told the columns, detected from the header (CSV) or the shape (JSON), never from the file name:
//
//   CSV  electricitymaps   "Datetime (UTC)", "Carbon Intensity gCO₂eq/kWh (direct)" and/or
//                          "(LCA)", optionally "Data Estimated"; LCA when both and none was named
//        watttime          "point_time" + "value" with WattTime's metadata columns ("signal_type",
//                          "region", "units", ...), or the older "timestamp" + "MOER"; lbs/MWh
//                          unless a "units" column says otherwise
//   JSON ukgrid            {"data": [{"from", "to", "intensity": {"forecast", "actual"}}]} (also
//                          the regional nesting); actual, else forecast (estimated)
//        carbon-aware-sdk  [{"location", "time", "rating", "duration"}] (emissions/bylocation) or
//                          [{"forecastData": [{"timestamp", "value", "duration"}]}] (a forecast)
//        electricitymaps   {"history"|"data"|"forecast": [{"datetime", "carbonIntensity"}]}
//        watttime          {"data": [{"point_time", "value"}], "meta": {"units", ...}}
//
// Every choice the loader made (which column, which conversion) comes back as a note.
//
// Thread safety: pure functions.
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chase/time.h"

namespace chase::detail {

inline constexpr double kGPerKwhPerLbsPerMwh = 0.45359237;

// One point of a JSON export; `index` is its position in the file's list (for messages).
struct FormatRecord {
  UtcTime time;
  double value = 0;
  bool estimated = false;
  std::size_t index = 0;
};

struct JsonSeries {
  std::string format;  // "ukgrid", "carbon-aware-sdk", "electricitymaps", "watttime"
  std::vector<FormatRecord> records;
  std::size_t nulls = 0;  // points without a value, left out
  std::vector<std::string> notes;
};

// True when the file is a regular file whose first non-blank character (after a UTF-8 byte order
// mark) opens JSON. Pipes and FIFOs are never sniffed (it would consume them): they are CSV.
bool looks_like_json(const std::filesystem::path& path);
// Reads a JSON export; kParse naming the file and what is wrong when it is none of the formats.
JsonSeries read_carbon_json(const std::filesystem::path& path);

// What the header of a CSV says about its columns; a column left unset is found the generic way.
struct CsvLayout {
  std::string format;  // "" for a generic file
  std::optional<std::size_t> time_column;
  std::optional<std::size_t> value_column;
  std::optional<std::size_t> estimated_column;
  std::optional<std::size_t> units_column;  // WattTime: a per-row unit
  double factor = 1;                        // to gCO2eq/kWh
  std::vector<std::string> notes;
};

// `value_named`: the caller chose the value column, so no choice between direct and LCA is made
// (and none noted).
CsvLayout detect_csv_layout(const std::vector<std::string>& header, bool value_named);

// The factor that turns a WattTime unit into gCO2eq/kWh; nullopt for a unit chase cannot convert.
std::optional<double> watttime_unit_factor(std::string_view unit);

// True when a timestamp's text carries its UTC offset ("Z", "+01:00", "-0500").
bool has_utc_offset(std::string_view text);

}  // namespace chase::detail
