// Every recorded provider response (tests/carbon/fixtures/<provider>/, and the JSON exports of
// tests/carbon/fixtures/formats/) is checked against the services' published contracts: field
// names and nesting, value types, time formats and units. A recording with a field the real API
// does not send, or without one it always sends, fails here, so the replay tests cannot drift into
// testing a service that does not exist. The few recordings that break the contract on purpose
// (failure injection) are listed, with the reason, and the list must match exactly.
//
// Contracts (docs/PROVIDERS.md, "Endpoints used"): Electricity Maps v3, WattTime v3, the UK Carbon
// Intensity API and the Carbon Aware SDK WebAPI, as published by each service.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "carbon/providers/provider_test_util.h"

namespace chase::testing {
namespace {

using nlohmann::json;

// A contract is JSON of the same shape as the answer: an object maps field names (a trailing '?'
// marks an optional field) to contracts, a one-element list is a list of that element, and a
// string names the scalar kind: "string", "number", "bool", "null", a time format ("em-time",
// "iso-offset-time", "uk-time"), "timespan", "any-list", or "enum:a,b,c"; "A|B" allows either.
const json kElectricityMapsPoint = json::parse(R"({
  "zone": "string", "carbonIntensity": "number|null", "datetime": "em-time",
  "updatedAt": "em-time", "createdAt": "em-time", "emissionFactorType": "enum:lifecycle,direct",
  "isEstimated": "bool", "estimationMethod": "string|null"})");

json electricitymaps_contract(const std::string& endpoint) {
  if (endpoint == "latest") return kElectricityMapsPoint;
  if (endpoint == "history")
    return {{"zone", "string"}, {"history", json::array({kElectricityMapsPoint})}};
  if (endpoint == "past-range")
    return {{"zone?", "string"}, {"data", json::array({kElectricityMapsPoint})}};
  return json::parse(R"({"zone": "string", "updatedAt": "em-time",
    "forecast": [{"carbonIntensity": "number|null", "datetime": "em-time"}]})");
}

const json kWattTimeData = json::parse(R"({
  "data": [{"point_time": "iso-offset-time", "value": "number|null"}],
  "meta": {"data_point_period_seconds": "number", "region": "string",
           "signal_type": "enum:co2_moer,co2_aoer,health_damage",
           "units": "enum:lbs_co2_per_mwh,kg_co2_per_mwh,g_co2_per_kwh,percentile",
           "warnings": "any-list", "generated_at?": "iso-offset-time",
           "generated_at_period_seconds?": "number", "model?": {"date": "string", "type?": "string"}}
})");
const json kWattTimeLogin = json::parse(R"({"token": "string"})");

const json kUkPeriod = json::parse(R"({"from": "uk-time", "to": "uk-time",
  "intensity": {"forecast": "number|null", "actual?": "number|null",
                "index": "enum:very low,low,moderate,high,very high"}})");
json uk_regional_contract() {
  json period = kUkPeriod;
  period["generationmix"] = json::array({json::parse(R"({"fuel": "string", "perc": "number"})")});
  return {{"regionid", "number"},
          {"dnoregion", "string"},
          {"shortname", "string"},
          {"postcode?", "string"},
          {"data", json::array({period})}};
}

const json kSdkEmissions = json::parse(R"({"location": "string", "time": "iso-offset-time",
  "rating": "number|null", "duration": "timespan"})");
const json kSdkForecastPoint = json::parse(R"({"location": "string",
  "timestamp": "iso-offset-time", "duration": "number", "value": "number|null"})");
json sdk_forecast_contract() {
  return {{"generatedAt", "iso-offset-time"},
          {"requestedAt", "iso-offset-time"},
          {"location", "string"},
          {"dataStartAt", "iso-offset-time"},
          {"dataEndAt", "iso-offset-time"},
          {"windowSize", "number"},
          {"optimalDataPoints", json::array({kSdkForecastPoint})},
          {"forecastData", json::array({kSdkForecastPoint})}};
}
// ASP.NET Core's problem details, the SDK's error body.
const json kSdkProblem = json::parse(R"({"type": "string", "title": "string", "status": "number",
  "detail?": "string", "errors?": {"location?": ["string"]}, "traceId?": "string"})");

bool matches(const std::string& pattern, const std::string& text) {
  return std::regex_match(text, std::regex(pattern));
}

// True when `value` is of the scalar `kind`.
bool scalar_matches(const std::string& kind, const json& value) {
  if (kind == "null") return value.is_null();
  if (kind == "string") return value.is_string();
  if (kind == "number") return value.is_number();
  if (kind == "bool") return value.is_boolean();
  if (kind == "any-list") return value.is_array();
  if (!value.is_string()) return false;
  const std::string text = value.get<std::string>();
  if (kind == "em-time") return matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)", text);
  if (kind == "iso-offset-time") {
    return matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d))", text);
  }
  if (kind == "uk-time") return matches(R"(\d{4}-\d\d-\d\dT\d\d:\d\dZ)", text);
  if (kind == "timespan") return matches(R"((\d+\.)?\d\d:\d\d:\d\d)", text);
  if (kind.starts_with("enum:")) {
    std::string rest = kind.substr(5) + ",";
    for (auto comma = rest.find(','); comma != std::string::npos; comma = rest.find(',')) {
      if (rest.substr(0, comma) == text) return true;
      rest = rest.substr(comma + 1);
    }
    return false;
  }
  ADD_FAILURE() << "unknown kind in a contract: " << kind;
  return false;
}

// Collects every breach of `contract` by `value` at `path` into `problems`.
void check(const json& contract, const json& value, const std::string& path,
           std::vector<std::string>& problems) {
  if (contract.is_string()) {
    const std::string kinds = contract.get<std::string>() + "|";
    for (std::size_t start = 0, bar = kinds.find('|'); bar != std::string::npos;
         start = bar + 1, bar = kinds.find('|', start)) {
      if (scalar_matches(kinds.substr(start, bar - start), value)) return;
    }
    problems.push_back(path + ": " + value.dump() + " is not " + contract.get<std::string>());
  } else if (contract.is_array()) {
    if (!value.is_array()) {
      problems.push_back(path + ": expected a list");
      return;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
      check(contract.front(), value[i], path + "[" + std::to_string(i) + "]", problems);
    }
  } else {
    if (!value.is_object()) {
      problems.push_back(path + ": expected an object");
      return;
    }
    std::set<std::string> known;
    for (const auto& [key, inner] : contract.items()) {
      const bool optional = key.ends_with("?");
      const std::string name = optional ? key.substr(0, key.size() - 1) : key;
      known.insert(name);
      if (!value.contains(name)) {
        if (!optional) problems.push_back(path + "." + name + ": missing");
        continue;
      }
      check(inner, value.at(name), path + "." + name, problems);
    }
    for (const auto& [key, inner] : value.items()) {
      if (known.count(key) == 0) {
        problems.push_back(path + "." + key + ": a field the real API does not have");
      }
    }
  }
}

// The contract of a recording, from its provider directory and file name.
json contract_for(const std::string& provider, const std::string& file) {
  const auto starts = [&](const char* prefix) { return file.starts_with(prefix); };
  if (provider == "electricitymaps") {
    if (starts("latest")) return electricitymaps_contract("latest");
    if (starts("history")) return electricitymaps_contract("history");
    if (starts("past_range")) return electricitymaps_contract("past-range");
    if (starts("forecast")) return electricitymaps_contract("forecast");
  } else if (provider == "watttime") {
    if (starts("login")) return kWattTimeLogin;
    return kWattTimeData;
  } else if (provider == "ukgrid") {
    if (starts("regional_fw24h")) return {{"data", uk_regional_contract()}};
    if (starts("regional")) return {{"data", json::array({uk_regional_contract()})}};
    return {{"data", json::array({kUkPeriod})}};
  } else if (provider == "carbon-aware-sdk") {
    if (starts("bylocation")) return json::array({kSdkEmissions});
    if (starts("forecast")) return json::array({sdk_forecast_contract()});
    return kSdkProblem;
  } else if (provider == "formats") {
    if (starts("carbon_aware_sdk_bylocation")) return json::array({kSdkEmissions});
    if (starts("carbon_aware_sdk_forecast")) return json::array({sdk_forecast_contract()});
    if (starts("ukgrid")) return {{"data", json::array({kUkPeriod})}};
  }
  ADD_FAILURE() << "no contract for " << provider << "/" << file;
  return json::object();
}

// Recordings that break the contract on purpose, and why.
const std::map<std::string, std::string> kDeliberateBreaches = {
    {"carbon-aware-sdk/bylocation_truncated.json", "cut short: not JSON"},
    {"carbon-aware-sdk/forecast_truncated.json", "cut short: not JSON"},
    {"electricitymaps/forecast_truncated.json", "cut short: not JSON"},
    {"electricitymaps/history_truncated.json", "cut short: not JSON"},
    {"electricitymaps/latest_truncated.json", "cut short: not JSON"},
    {"ukgrid/fw24h_truncated.json", "cut short: not JSON"},
    {"ukgrid/intensity_truncated.json", "cut short: not JSON"},
    {"ukgrid/range_truncated.json", "cut short: not JSON"},
    {"watttime/forecast_truncated.json", "cut short: not JSON"},
    {"watttime/historical_truncated.json", "cut short: not JSON"},
    // The real API has no unit field (it always answers in gCO2eq/kWh); these test that chase
    // would refuse another unit rather than silently use it.
    {"carbon-aware-sdk/bylocation_wrong_units.json", "a unit field the API never sends"},
    {"electricitymaps/latest_wrong_units.json", "a unit field the API never sends"},
    {"ukgrid/range_wrong_units.json", "a unit field the API never sends"},
};

std::vector<std::string> recordings() {
  std::vector<std::string> names;
  const auto root = std::filesystem::path(CHASE_SOURCE_DIR) / "tests/carbon/fixtures";
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".json") continue;
    names.push_back(entry.path().parent_path().filename().string() + "/" +
                    entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> breaches_of(const std::string& name) {
  const auto slash = name.find('/');
  const std::string provider = name.substr(0, slash);
  const std::string file = name.substr(slash + 1);
  const json parsed = json::parse(fixture(provider, file), nullptr, false);
  if (parsed.is_discarded()) return {"not valid JSON"};
  std::vector<std::string> problems;
  check(contract_for(provider, file), parsed, name, problems);
  return problems;
}

TEST(FixtureContract, EveryRecordingMatchesThePublishedContract) {
  const auto names = recordings();
  ASSERT_GT(names.size(), 40U);
  for (const auto& name : names) {
    const auto problems = breaches_of(name);
    if (kDeliberateBreaches.count(name) != 0) {
      EXPECT_FALSE(problems.empty())
          << name << " is listed as breaking the contract (" << kDeliberateBreaches.at(name)
          << ") but does not: take it off the list";
      continue;
    }
    EXPECT_THAT(problems, ::testing::IsEmpty()) << name;
  }
  for (const auto& [name, why] : kDeliberateBreaches) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name << " is gone";
  }
}

// The checker itself: it must catch what it is there to catch.
TEST(FixtureContract, AFieldTheRealApiDoesNotHaveIsCaught) {
  json latest = json::parse(fixture("electricitymaps", "latest.json"));
  std::vector<std::string> problems;
  check(electricitymaps_contract("latest"), latest, "latest", problems);
  EXPECT_THAT(problems, ::testing::IsEmpty());
  latest["carbonIntensityUnit"] = "g";
  check(electricitymaps_contract("latest"), latest, "latest", problems);
  EXPECT_THAT(problems, ::testing::ElementsAre(::testing::HasSubstr(
                            "carbonIntensityUnit: a field the real API does not have")));
}

TEST(FixtureContract, WrongNestingTimeFormatOrUnitIsCaught) {
  std::vector<std::string> problems;
  json uk = json::parse(fixture("ukgrid", "range.json"));
  uk["data"][0]["from"] = "2026-03-01T00:00:00Z";  // seconds: not the UK API's format
  uk["data"][1]["intensity"] = 190;                // not nested
  check({{"data", json::array({kUkPeriod})}}, uk, "uk", problems);
  json watttime = json::parse(fixture("watttime", "historical.json"));
  watttime["meta"]["units"] = "g/kWh";
  watttime["meta"].erase("region");
  check(kWattTimeData, watttime, "wt", problems);
  EXPECT_THAT(problems, ::testing::UnorderedElementsAre(::testing::HasSubstr("uk.data[0].from"),
                                                        ::testing::HasSubstr("uk.data[1]"),
                                                        ::testing::HasSubstr("wt.meta.units"),
                                                        ::testing::HasSubstr("wt.meta.region")));
}

}  // namespace
}  // namespace chase::testing
