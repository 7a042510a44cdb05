// The `auto` forecaster: see forecast/auto_forecaster.h and docs/FORECASTING.md.
//
// Features of target index t for horizon h, with o = t − h the last index whose value is known:
//   lags      y[t − L] for L in {h, h+1, d, d + day, week, h + day} (d = the first whole number of
//             days ≥ h), keeping only L ≥ h (never the future) and L ≤ the fit's begin (as far as
//             history allows; the choice is made at fit() and kept for predict()), and each
//             y[t − L] − y[o] for L > h;
//   clock     sin/cos of the time of day (two harmonics), sin/cos of the week phase, a weekend
//   flag; shares    (exogenous) each generation-forecast column ("production" in its name) as a
//   share of
//             their sum at t, the change of that share since o, and the sum at t relative to o;
//   all exo   (exogenous) every exogenous column at t and its change since o.
// Candidates: ridge regression (standardised features, penalties kAlphas) of the level y[t] or of
// the change y[t] − y[o], on the base features, base + shares, or base + all exogenous features.
// Validation: every candidate is fitted on the fit range minus its last kAutoValidationDays days
// (less a gap of h − 1 points, so no training target is later than a validation forecast's origin)
// and scored by MAPE on those days; so are persistence and seasonal. A candidate must beat the best
// baseline by kMargin (relative) to be chosen; the choice is then refitted on the whole range. With
// less than a day to validate on, auto is persistence.
#include "forecast/auto_forecaster.h"

#include <fmt/format.h>

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <string>
#include <vector>

#include "chase/error.h"
#include "forecast/features.h"

namespace chase::forecast_detail {

namespace {

constexpr std::int64_t kSecondsPerDay = 86400;
constexpr std::int64_t kSecondsPerWeek = 7 * kSecondsPerDay;
constexpr std::array<double, 2> kAlphas = {3.0, 30.0};
constexpr double kMargin = 0.005;  // a model must validate 0.5 % better than the best baseline
constexpr std::size_t kMinTrainRows = 8;
constexpr std::string_view kName = "auto";

std::size_t points_per_day(const CarbonSeries& series) {
  return steps_per_day(series, "Forecaster 'auto'");
}

void check_call(const CarbonSeries& series, std::size_t begin, std::size_t end, std::size_t horizon,
                std::string_view call) {
  check_horizon(horizon, kName);
  check_range(series, begin, end, kName, call);
  check_lag_available(begin, horizon, kName, call);
}

bool is_production(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return lower.find("production") != std::string::npos;
}

// Which features a fit uses; predict() builds the same ones.
struct Layout {
  std::size_t horizon = 0;
  std::size_t per_day = 0;
  std::vector<std::size_t> lags;
  std::vector<std::string> exogenous_names;  // the series' exogenous columns, when used
  std::vector<std::size_t> production;       // indices (into the exogenous columns) of shares
  std::size_t base_count = 0, shares_count = 0, exo_count = 0;
  std::size_t reach() const { return lags.empty() ? horizon : lags.back(); }
  std::size_t width() const { return base_count + shares_count + exo_count; }
};

constexpr std::size_t kClockFeatures = 7;

Layout make_layout(const CarbonSeries& series, std::size_t begin, std::size_t horizon,
                   bool use_exogenous) {
  Layout layout;
  layout.horizon = horizon;
  layout.per_day = points_per_day(series);
  const std::size_t day = layout.per_day;
  const std::size_t days_ahead = (horizon + day - 1) / day;
  for (const std::size_t lag :
       {horizon, horizon + 1, days_ahead * day, (days_ahead + 1) * day, 7 * day, horizon + day}) {
    if (lag >= horizon && lag <= begin) layout.lags.push_back(lag);
  }
  std::sort(layout.lags.begin(), layout.lags.end());
  layout.lags.erase(std::unique(layout.lags.begin(), layout.lags.end()), layout.lags.end());
  layout.base_count = 2 * layout.lags.size() - 1 + kClockFeatures;
  if (use_exogenous && !series.exogenous().empty()) {
    for (std::size_t c = 0; c < series.exogenous().size(); ++c) {
      layout.exogenous_names.push_back(series.exogenous()[c].name);
      if (is_production(series.exogenous()[c].name)) layout.production.push_back(c);
    }
    layout.shares_count = layout.production.size() >= 2 ? 2 * layout.production.size() + 1 : 0;
    layout.exo_count = 2 * layout.exogenous_names.size();
  }
  return layout;
}

// Row-major feature matrix of the targets [begin, end).
Eigen::MatrixXd build_features(const CarbonSeries& series, const Layout& layout, std::size_t begin,
                               std::size_t end) {
  const auto rows = static_cast<Eigen::Index>(end - begin);
  Eigen::MatrixXd x(rows, static_cast<Eigen::Index>(layout.width()));
  const auto& values = series.values();
  const auto& exogenous = series.exogenous();
  std::vector<double> share_t(layout.production.size()), share_o(layout.production.size());
  for (Eigen::Index r = 0; r < rows; ++r) {
    const std::size_t t = begin + static_cast<std::size_t>(r);
    const std::size_t o = t - layout.horizon;
    Eigen::Index c = 0;
    for (const std::size_t lag : layout.lags) x(r, c++) = values[t - lag];
    // The same lags relative to the last known value: ridge penalises these differences far less
    // than the nearly collinear levels, and "how far are we from yesterday" is what predicts.
    for (std::size_t k = 1; k < layout.lags.size(); ++k)
      x(r, c++) = values[t - layout.lags[k]] - values[o];
    const std::int64_t epoch_s =
        std::chrono::floor<std::chrono::seconds>(series.times()[t].time_since_epoch()).count();
    std::int64_t second_of_day = epoch_s % kSecondsPerDay;
    if (second_of_day < 0) second_of_day += kSecondsPerDay;
    // The Unix epoch was a Thursday: shift so that the week phase starts on Monday 00:00.
    std::int64_t second_of_week = (epoch_s + 3 * kSecondsPerDay) % kSecondsPerWeek;
    if (second_of_week < 0) second_of_week += kSecondsPerWeek;
    const double day_phase =
        2 * std::numbers::pi * static_cast<double>(second_of_day) / double{kSecondsPerDay};
    const double week_phase =
        2 * std::numbers::pi * static_cast<double>(second_of_week) / double{kSecondsPerWeek};
    x(r, c++) = std::sin(day_phase);
    x(r, c++) = std::cos(day_phase);
    x(r, c++) = std::sin(2 * day_phase);
    x(r, c++) = std::cos(2 * day_phase);
    x(r, c++) = std::sin(week_phase);
    x(r, c++) = std::cos(week_phase);
    x(r, c++) = second_of_week >= 5 * kSecondsPerDay ? 1.0 : 0.0;
    if (layout.shares_count > 0) {
      double total_t = 0, total_o = 0;
      for (const std::size_t p : layout.production) {
        total_t += std::max(0.0, exogenous[p].values[t]);
        total_o += std::max(0.0, exogenous[p].values[o]);
      }
      for (std::size_t k = 0; k < layout.production.size(); ++k) {
        const std::size_t p = layout.production[k];
        share_t[k] = total_t > 0 ? std::max(0.0, exogenous[p].values[t]) / total_t : 0.0;
        share_o[k] = total_o > 0 ? std::max(0.0, exogenous[p].values[o]) / total_o : 0.0;
      }
      for (std::size_t k = 0; k < share_t.size(); ++k) x(r, c++) = share_t[k];
      for (std::size_t k = 0; k < share_t.size(); ++k) x(r, c++) = share_t[k] - share_o[k];
      x(r, c++) = total_o > 0 ? total_t / total_o : 1.0;
    }
    for (std::size_t e = 0; e < layout.exogenous_names.size(); ++e) {
      x(r, c++) = exogenous[e].values[t];
      x(r, c++) = exogenous[e].values[t] - exogenous[e].values[o];
    }
  }
  return x;
}

enum class Target { kLevel, kChange };
enum class ExoSet { kNone, kShares, kAll };

struct Candidate {
  Target target = Target::kChange;
  ExoSet exo = ExoSet::kNone;
  double alpha = 1;
};

std::vector<Eigen::Index> columns_of(const Layout& layout, ExoSet exo) {
  std::vector<Eigen::Index> columns;
  const auto add = [&](std::size_t from, std::size_t count) {
    for (std::size_t c = from; c < from + count; ++c)
      columns.push_back(static_cast<Eigen::Index>(c));
  };
  add(0, layout.base_count);
  if (exo == ExoSet::kShares || exo == ExoSet::kAll) add(layout.base_count, layout.shares_count);
  if (exo == ExoSet::kAll) add(layout.base_count + layout.shares_count, layout.exo_count);
  return columns;
}

// A fitted ridge regression on some columns of the feature matrix.
struct Ridge {
  Target target = Target::kChange;
  std::vector<Eigen::Index> columns;
  Eigen::VectorXd mean, scale, beta;
  double intercept = 0;

  // Predictions for the rows of `x`; `last_known` holds y[t − h] for each row.
  Eigen::VectorXd predict(const Eigen::MatrixXd& x, const Eigen::VectorXd& last_known) const {
    const auto n = static_cast<Eigen::Index>(columns.size());
    Eigen::VectorXd out(x.rows());
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
      double sum = intercept;
      for (Eigen::Index j = 0; j < n; ++j)
        sum += (x(r, columns[static_cast<std::size_t>(j)]) - mean(j)) / scale(j) * beta(j);
      out(r) = target == Target::kChange ? last_known(r) + sum : sum;
    }
    return out;
  }
};

// What fitting a family of ridge candidates on rows [0, rows) shares: the standardised Gram matrix.
class RidgeFitter {
 public:
  RidgeFitter(const Eigen::MatrixXd& x, const Eigen::VectorXd& y, const Eigen::VectorXd& last_known,
              Eigen::Index rows)
      : rows_(rows) {
    const Eigen::MatrixXd top = x.topRows(rows);
    mean_ = top.colwise().mean().transpose();
    scale_ = ((top.rowwise() - mean_.transpose()).array().square().colwise().sum() /
              static_cast<double>(rows))
                 .sqrt()
                 .transpose();
    for (Eigen::Index j = 0; j < scale_.size(); ++j) {
      if (!(scale_(j) > 1e-12)) scale_(j) = 1;  // a constant column: its coefficient stays 0
    }
    const Eigen::MatrixXd z =
        (top.rowwise() - mean_.transpose()).array().rowwise() / scale_.transpose().array();
    gram_ = z.transpose() * z;
    const Eigen::VectorXd level = y.head(rows);
    const Eigen::VectorXd change = level - last_known.head(rows);
    level_mean_ = level.mean();
    change_mean_ = change.mean();
    xty_level_ = z.transpose() * (level.array() - level_mean_).matrix();
    xty_change_ = z.transpose() * (change.array() - change_mean_).matrix();
  }

  Ridge fit(const Candidate& candidate, const std::vector<Eigen::Index>& columns) const {
    Ridge model;
    model.target = candidate.target;
    model.columns = columns;
    const auto n = static_cast<Eigen::Index>(columns.size());
    Eigen::MatrixXd a(n, n);
    Eigen::VectorXd b(n);
    const Eigen::VectorXd& xty = candidate.target == Target::kLevel ? xty_level_ : xty_change_;
    model.mean.resize(n);
    model.scale.resize(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      const Eigen::Index ci = columns[static_cast<std::size_t>(i)];
      for (Eigen::Index j = 0; j < n; ++j)
        a(i, j) = gram_(ci, columns[static_cast<std::size_t>(j)]);
      a(i, i) += candidate.alpha;
      b(i) = xty(ci);
      model.mean(i) = mean_(ci);
      model.scale(i) = scale_(ci);
    }
    model.beta = a.ldlt().solve(b);
    model.intercept = candidate.target == Target::kLevel ? level_mean_ : change_mean_;
    return model;
  }

  Eigen::Index rows() const { return rows_; }

 private:
  Eigen::Index rows_;
  Eigen::VectorXd mean_, scale_;
  Eigen::MatrixXd gram_;
  Eigen::VectorXd xty_level_, xty_change_;
  double level_mean_ = 0, change_mean_ = 0;
};

double mape(const Eigen::VectorXd& predicted, const Eigen::VectorXd& actual) {
  double sum = 0;
  std::size_t count = 0;
  for (Eigen::Index i = 0; i < actual.size(); ++i) {
    if (actual(i) > 0) {
      sum += std::abs(predicted(i) - actual(i)) / actual(i);
      ++count;
    }
  }
  return count == 0 ? std::numeric_limits<double>::infinity()
                    : sum / static_cast<double>(count) * 100;
}

class AutoForecaster final : public Forecaster {
 public:
  explicit AutoForecaster(const ForecasterOptions& options) : options_(options) {}

  std::string_view name() const noexcept override { return kName; }

  // Counted in points at the fitted series' resolution, or hourly before any fit.
  std::size_t history_needed(std::size_t horizon) const override {
    const std::size_t day = layout_.per_day > 0 ? layout_.per_day : 24;
    const std::size_t days_ahead = (horizon + day - 1) / day;
    const std::size_t reach = std::max({horizon + 1, (days_ahead + 1) * day, 7 * day});
    return kAutoHistoryDays * day + reach;
  }

  void fit(const CarbonSeries& series, std::size_t begin, std::size_t end,
           std::size_t horizon) override {
    check_call(series, begin, end, horizon, "fit");
    fitted_ = false;
    layout_ = make_layout(series, begin, horizon, options_.use_exogenous);
    check_regular(series, begin - layout_.reach(), end, kName);
    const Eigen::MatrixXd x = build_features(series, layout_, begin, end);
    const auto n = static_cast<Eigen::Index>(end - begin);
    Eigen::VectorXd y(n), last(n), seasonal(n);
    const std::size_t seasonal_lag = seasonal_lag_of(horizon);
    const bool have_seasonal = begin >= seasonal_lag;
    for (Eigen::Index r = 0; r < n; ++r) {
      const std::size_t t = begin + static_cast<std::size_t>(r);
      y(r) = series.values()[t];
      last(r) = series.values()[t - horizon];
      seasonal(r) = have_seasonal ? series.values()[t - seasonal_lag] : last(r);
    }

    // Validation split: the last days (at most a quarter of the range), with a gap of h − 1.
    const auto validation = static_cast<Eigen::Index>(
        std::min(kAutoValidationDays * layout_.per_day, static_cast<std::size_t>(n) / 4));
    const Eigen::Index train_rows = n - validation - static_cast<Eigen::Index>(horizon - 1);
    choice_ = Choice::kPersistence;
    if (validation == 0 || train_rows < static_cast<Eigen::Index>(kMinTrainRows)) {
      fitted_ = true;
      horizon_ = horizon;
      return;
    }
    const Eigen::VectorXd y_val = y.tail(validation);
    double best = mape(last.tail(validation), y_val);
    if (have_seasonal) {
      const double seasonal_mape = mape(seasonal.tail(validation), y_val);
      if (seasonal_mape < best) {
        best = seasonal_mape;
        choice_ = Choice::kSeasonal;
      }
    }
    const double baseline = best;
    // A choice is only trusted when it can be validated on at least a whole day: with less (e.g.
    // the chase protocol's one-day fits) it is mostly luck, and persistence is the safe forecast.
    if (validation < static_cast<Eigen::Index>(layout_.per_day)) {
      choice_ = Choice::kPersistence;
      fitted_ = true;
      horizon_ = horizon;
      return;
    }
    const RidgeFitter validation_fitter(x, y, last, train_rows);
    const Eigen::MatrixXd x_val = x.bottomRows(validation);
    const Eigen::VectorXd last_val = last.tail(validation);
    std::optional<Candidate> winner;
    for (const Candidate& candidate : candidates()) {
      const Ridge model = validation_fitter.fit(candidate, columns_of(layout_, candidate.exo));
      const double score = mape(model.predict(x_val, last_val), y_val);
      if (score < best) {
        best = score;
        winner = candidate;
      }
    }
    if (winner && best < baseline * (1 - kMargin)) {
      choice_ = Choice::kRidge;
      const RidgeFitter full(x, y, last, n);
      model_ = full.fit(*winner, columns_of(layout_, winner->exo));
    }
    fitted_ = true;
    horizon_ = horizon;
  }

  std::vector<double> predict(const CarbonSeries& series, std::size_t first, std::size_t last,
                              std::size_t horizon) const override {
    if (!fitted_) {
      throw Error(ErrorCode::kInvalidArgument,
                  "Forecaster 'auto': predict() called before fit(); fit it first.");
    }
    if (horizon != horizon_) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("Forecaster 'auto': predict() asked for horizon {} but the model "
                              "was fitted for horizon {}; fit it again for that horizon.",
                              horizon, horizon_));
    }
    check_call(series, first, last, horizon, "predict");
    if (points_per_day(series) != layout_.per_day) {
      throw Error(ErrorCode::kInvalidArgument,
                  "Forecaster 'auto': predict() got a series with another resolution than the "
                  "one it was fitted on; fit it on this series.");
    }
    std::size_t reach = layout_.reach();
    if (choice_ == Choice::kSeasonal) reach = std::max(reach, seasonal_lag_of(horizon));
    if (first < reach) {
      throw Error(ErrorCode::kInvalidArgument,
                  fmt::format("Forecaster 'auto': predict range starts at index {}, but the "
                              "fitted model reads values {} step(s) earlier; start at index {} "
                              "or later.",
                              first, reach, reach));
    }
    check_regular(series, first - reach, last, kName);
    if (choice_ == Choice::kRidge && !layout_.exogenous_names.empty()) {
      bool same = series.exogenous().size() == layout_.exogenous_names.size();
      for (std::size_t c = 0; same && c < layout_.exogenous_names.size(); ++c) {
        same = series.exogenous()[c].name == layout_.exogenous_names[c];
      }
      if (!same) {
        throw Error(ErrorCode::kInvalidArgument,
                    fmt::format("Forecaster 'auto': predict() got a series without the "
                                "exogenous columns it was fitted with ({} columns); load the "
                                "same columns.",
                                layout_.exogenous_names.size()));
      }
    }
    std::vector<double> out(last - first);
    const auto& values = series.values();
    if (choice_ != Choice::kRidge) {
      const std::size_t lag = choice_ == Choice::kSeasonal ? seasonal_lag_of(horizon) : horizon;
      for (std::size_t t = first; t < last; ++t) out[t - first] = values[t - lag];
      return out;
    }
    const Eigen::MatrixXd x = build_features(series, layout_, first, last);
    Eigen::VectorXd known(x.rows());
    for (Eigen::Index r = 0; r < x.rows(); ++r) {
      known(r) = values[first + static_cast<std::size_t>(r) - horizon];
    }
    const Eigen::VectorXd predicted = model_.predict(x, known);
    // An intensity is never negative: clip rather than return an impossible value.
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = std::max(0.0, predicted(static_cast<Eigen::Index>(i)));
    }
    return out;
  }

 private:
  enum class Choice { kPersistence, kSeasonal, kRidge };

  std::size_t seasonal_lag_of(std::size_t horizon) const {
    const std::size_t day = layout_.per_day;
    const std::size_t days = std::max<std::size_t>(1, (horizon + day - 1) / day);
    return days * day;
  }

  std::vector<Candidate> candidates() const {
    std::vector<Candidate> list;
    std::vector<ExoSet> sets = {ExoSet::kNone};
    if (layout_.shares_count > 0) sets.push_back(ExoSet::kShares);
    if (layout_.exo_count > 0) sets.push_back(ExoSet::kAll);
    for (const Target target : {Target::kChange, Target::kLevel}) {
      for (const ExoSet exo : sets) {
        for (const double alpha : kAlphas) list.push_back({target, exo, alpha});
      }
    }
    return list;
  }

  ForecasterOptions options_;
  Layout layout_;
  bool fitted_ = false;
  std::size_t horizon_ = 0;
  Choice choice_ = Choice::kPersistence;
  Ridge model_;
};

}  // namespace

std::unique_ptr<Forecaster> make_auto(const ForecasterOptions& options) {
  return std::make_unique<AutoForecaster>(options);
}

}  // namespace chase::forecast_detail
