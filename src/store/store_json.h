// Internal (store): the recurring store's values as JSON, for the HTTP API of `chase serve` and its
// client (docs/RECURRING.md "HTTP API"). Doubles keep every bit (nlohmann writes the shortest
// round-trip text); +inf (a cost limit or β before any recurrence) travels as null.
#pragma once

#include <nlohmann/json.hpp>

#include "chase/recurring_store.h"

namespace chase::store {

nlohmann::json to_json(const RecurringJobSpec& spec);
RecurringJobSpec spec_from_json(const nlohmann::json& j);
nlohmann::json to_json(const SavedProfile& profile);
SavedProfile profile_from_json(const nlohmann::json& j);
nlohmann::json to_json(const RunDecision& decision);
RunDecision decision_from_json(const nlohmann::json& j);
nlohmann::json to_json(const RunEnd& end);
RunEnd end_from_json(const nlohmann::json& j);
nlohmann::json to_json(const RunRecord& run);
RunRecord run_from_json(const nlohmann::json& j);
nlohmann::json to_json(const BatchSizeObservation& o);
BatchSizeObservation observation_from_json(const nlohmann::json& j);

}  // namespace chase::store
