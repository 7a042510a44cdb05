// forecast/auto_forecaster.h — the `auto` forecaster (design: docs/FORECASTING.md).
//
// A direct model per horizon chosen by rolling validation: ridge regressions on lags (h, h+1, a
// day, two days, a week as far as the horizon and the history allow), the clock (time of day, day
// of week) and, with ForecasterOptions::use_exogenous, the series' exogenous columns; each
// candidate predicts either the level or the change from the last known value. The candidate with
// the lowest MAPE on the last days of the fit range wins, unless a baseline (persistence or
// seasonal) validates at least as well, in which case auto predicts exactly what that baseline
// predicts.
#pragma once

#include <cstddef>
#include <memory>

#include "chase/forecast.h"

namespace chase::forecast_detail {

// Training days auto asks for (history_needed adds its longest lag); it fits on less when given
// less, dropping lags that would reach before the series.
inline constexpr std::size_t kAutoHistoryDays = 112;
// Days at the end of the fit range used to validate the candidates.
inline constexpr std::size_t kAutoValidationDays = 14;

std::unique_ptr<Forecaster> make_auto(const ForecasterOptions& options);

}  // namespace chase::forecast_detail
