#include "chase/carbon_provider.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "carbon/providers/provider_base.h"
#include "chase/error.h"
#include "common/bounded_input.h"
#include "common/text.h"

namespace chase {

namespace {

constexpr std::string_view kNames[] = {"electricitymaps", "watttime", "ukgrid", "carbon-aware-sdk",
                                       "file"};

std::string known_names() {
  std::string names;
  for (const auto name : kNames) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

std::string redact(const std::string& secret) { return secret.empty() ? "(none)" : "***"; }

// Environment variables per provider: {variable, setting}.
struct EnvSetting {
  const char* variable;
  const char* setting;
};

std::vector<EnvSetting> env_settings(std::string_view name) {
  std::vector<EnvSetting> settings = {{"CHASE_CARBON_CACHE_DIR", "cache_dir"}};
  if (name == "electricitymaps") {
    settings.insert(settings.end(), {{"ELECTRICITYMAPS_API_KEY", "api_key"},
                                     {"ELECTRICITYMAPS_ZONE", "location"},
                                     {"ELECTRICITYMAPS_URL", "base_url"}});
  } else if (name == "watttime") {
    settings.insert(settings.end(), {{"WATTTIME_USERNAME", "username"},
                                     {"WATTTIME_PASSWORD", "password"},
                                     {"WATTTIME_REGION", "location"},
                                     {"WATTTIME_URL", "base_url"}});
  } else if (name == "ukgrid") {
    settings.insert(settings.end(), {{"UKGRID_REGION", "location"}, {"UKGRID_URL", "base_url"}});
  } else if (name == "carbon-aware-sdk") {
    settings.insert(settings.end(), {{"CARBON_AWARE_SDK_URL", "base_url"},
                                     {"CARBON_AWARE_SDK_LOCATION", "location"}});
  } else if (name == "file") {
    settings.insert(settings.end(), {{"CHASE_CARBON_FILE", "file"}});
  }
  return settings;
}

void check_name(std::string_view name) {
  for (const auto known : kNames) {
    if (known == name) return;
  }
  throw Error(ErrorCode::kInvalidArgument,
              fmt::format("Unknown carbon-intensity provider '{}'. Known providers: {}.", name,
                          known_names()));
}

// Applies one setting (from the config file or the environment) to `options`.
void apply(CarbonProviderOptions& options, const std::string& setting, const nlohmann::json& value,
           const std::string& origin) {
  const auto text = [&] {
    if (!value.is_string()) {
      throw Error(ErrorCode::kParse, fmt::format("{}: \"{}\" must be a string.", origin, setting));
    }
    return value.get<std::string>();
  };
  const auto milliseconds = [&] {
    if (!value.is_number_integer() || value.get<std::int64_t>() <= 0) {
      throw Error(
          ErrorCode::kParse,
          fmt::format("{}: \"{}\" must be a positive integer (milliseconds).", origin, setting));
    }
    return std::chrono::milliseconds(value.get<std::int64_t>());
  };
  if (setting == "base_url") {
    options.base_url = text();
  } else if (setting == "location" || setting == "zone" || setting == "region") {
    options.location = text();
  } else if (setting == "api_key") {
    options.credentials.api_key = text();
  } else if (setting == "username") {
    options.credentials.username = text();
  } else if (setting == "password") {
    options.credentials.password = text();
  } else if (setting == "cache_dir") {
    options.cache_dir = text();
  } else if (setting == "file") {
    options.file = text();
  } else if (setting == "time_column") {
    options.file_columns.time_column = text();
  } else if (setting == "value_column") {
    options.file_columns.value_column = text();
  } else if (setting == "exogenous") {
    if (!value.is_boolean()) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: \"{}\" must be true or false.", origin, setting));
    }
    options.file_columns.exogenous = value.get<bool>();
  } else if (setting == "exogenous_lead_hours") {
    if (!value.is_number() || !(value.get<double>() > 0) || value.get<double>() > 24 * 14) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: \"{}\" must be a number of hours above 0 and at most 336.",
                              origin, setting));
    }
    options.exogenous_publication.lead =
        std::chrono::seconds(static_cast<std::int64_t>(std::llround(value.get<double>() * 3600)));
  } else if (setting == "exogenous_published_at") {
    const auto at = value.is_string() ? parse_time_of_day(value.get<std::string>()) : std::nullopt;
    if (!at) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: \"{}\" must be a UTC time of day, \"HH:MM\" (e.g. \"12:00\").",
                              origin, setting));
    }
    options.exogenous_publication.daily_at = *at;
  } else if (setting == "emission_factor_type") {
    options.emission_factor_type = text();
  } else if (setting == "signal_type") {
    options.signal_type = text();
  } else if (setting == "disable_estimations") {
    if (!value.is_boolean()) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: \"{}\" must be true or false.", origin, setting));
    }
    options.disable_estimations = value.get<bool>();
  } else if (setting == "timeout_ms") {
    options.timeout = milliseconds();
  } else if (setting == "connect_timeout_ms") {
    options.connect_timeout = milliseconds();
  } else if (setting == "max_attempts") {
    if (!value.is_number_integer() || value.get<std::int64_t>() < 1 ||
        value.get<std::int64_t>() > 20) {
      throw Error(ErrorCode::kParse,
                  fmt::format("{}: \"max_attempts\" must be an integer from 1 to 20.", origin));
    }
    options.retry.max_attempts = value.get<int>();
  } else {
    throw Error(ErrorCode::kParse,
                fmt::format("{}: unknown setting \"{}\". Known: base_url, location, api_key, "
                            "username, password, cache_dir, file, time_column, value_column, "
                            "exogenous, exogenous_lead_hours, exogenous_published_at, "
                            "emission_factor_type, signal_type, "
                            "disable_estimations, timeout_ms, "
                            "connect_timeout_ms, max_attempts.",
                            origin, escape_untrusted(setting, 80)));
  }
}

}  // namespace

std::string to_string(const CarbonProviderOptions& options) {
  return fmt::format(
      "base_url={} location={} api_key={} username={} password={} connect_timeout_ms={} "
      "timeout_ms={} max_attempts={} cache_dir={} file={}",
      options.base_url.empty() ? "(default)" : options.base_url, options.location,
      redact(options.credentials.api_key),
      options.credentials.username.empty() ? "(none)" : options.credentials.username,
      redact(options.credentials.password), options.connect_timeout.count(),
      options.timeout.count(), options.retry.max_attempts,
      options.cache_dir.empty() ? "(none)" : options.cache_dir.string(),
      options.file.empty() ? "(none)" : options.file.string());
}

UtcTime ExogenousPublication::published_until(UtcTime now) const {
  if (!daily_at) return now + lead;
  // The last publication at or before now covers up to the end of the day after its own.
  const auto midnight = std::chrono::floor<std::chrono::days>(now);
  const UtcTime today = UtcTime(midnight) + *daily_at;
  const UtcTime published = today <= now ? today : today - std::chrono::days(1);
  return UtcTime(std::chrono::floor<std::chrono::days>(published) + std::chrono::days(2));
}

std::string ExogenousPublication::describe() const {
  if (daily_at) {
    return fmt::format("published daily at {} UTC for the next day", format_time_of_day(*daily_at));
  }
  return fmt::format("read up to {:g} h ahead", static_cast<double>(lead.count()) / 3600);
}

void ExogenousPublication::validate(std::string_view what) const {
  if (lead < std::chrono::seconds(0)) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the exogenous inputs' publication lead must not be negative, not "
                            "{} s.",
                            what, lead.count()));
  }
  if (daily_at && (*daily_at < std::chrono::seconds(0) || *daily_at >= std::chrono::hours(24))) {
    throw Error(ErrorCode::kInvalidArgument,
                fmt::format("{}: the exogenous inputs' daily publication time must be within a "
                            "day (00:00 to 23:59:59 UTC), not {} s after midnight.",
                            what, daily_at->count()));
  }
}

std::vector<std::string> carbon_provider_names() {
  return std::vector<std::string>(std::begin(kNames), std::end(kNames));
}

std::unique_ptr<CarbonProvider> make_carbon_provider(std::string_view name,
                                                     CarbonProviderOptions options) {
  check_name(name);
  if (name == "electricitymaps") return detail::make_electricitymaps_provider(std::move(options));
  if (name == "watttime") return detail::make_watttime_provider(std::move(options));
  if (name == "ukgrid") return detail::make_ukgrid_provider(std::move(options));
  if (name == "carbon-aware-sdk") return detail::make_carbon_aware_sdk_provider(std::move(options));
  return detail::make_file_provider(std::move(options));
}

CarbonProviderOptions load_carbon_provider_options(std::string_view name,
                                                   const std::filesystem::path& config_file,
                                                   const EnvLookup& env) {
  check_name(name);
  CarbonProviderOptions options;
  if (!config_file.empty()) {
    std::string content;
    try {
      content = detail::read_bounded_file(config_file);
    } catch (const Error& e) {
      throw Error(e.code() == ErrorCode::kIo ? ErrorCode::kNotFound : e.code(),
                  fmt::format("The provider config file: {}", e.what()));
    }
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(content);
    } catch (const nlohmann::json::parse_error& e) {
      // Only the position: the parser's own message quotes the text, which may hold a secret.
      throw Error(ErrorCode::kParse,
                  fmt::format("The provider config file '{}' is not valid JSON (syntax error at "
                              "byte {}). Fix the file.",
                              config_file.string(), e.byte));
    }
    if (!json.is_object()) {
      throw Error(ErrorCode::kParse,
                  fmt::format("The provider config file '{}' must hold a JSON object keyed by "
                              "provider name ({}).",
                              config_file.string(), known_names()));
    }
    if (const auto it = json.find(std::string(name)); it != json.end()) {
      const std::string origin = fmt::format("'{}', provider \"{}\"", config_file.string(), name);
      if (!it->is_object()) {
        throw Error(ErrorCode::kParse,
                    fmt::format("{}: the settings must be a JSON object.", origin));
      }
      for (const auto& [setting, value] : it->items()) apply(options, setting, value, origin);
    }
  }
  const EnvLookup lookup =
      env ? env : [](const std::string& variable) -> std::optional<std::string> {
    const char* value = std::getenv(variable.c_str());
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
  for (const auto& [variable, setting] : env_settings(name)) {
    if (const auto value = lookup(variable); value && !value->empty()) {
      apply(options, setting, *value, fmt::format("environment variable {}", variable));
    }
  }
  return options;
}

}  // namespace chase
