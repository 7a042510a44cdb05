// The tree ensembles, with scikit-learn 1.2's semantics and the published hyper-parameters:
//   `gboost`   GradientBoostingRegressor: init = mean of y, 100 stages, learning rate 0.1, squared
//              loss (each tree fits the residuals y − F; its leaves are their means), depth 3,
//              subsample 1.0 (every stage sees every point);
//   `adaboost` AdaBoostRegressor (AdaBoost.R2, Drucker 1997): 50 depth-3 trees, learning rate 1,
//              linear loss; each round fits on a weighted resample (with replacement) of the
//              points, stops early on a perfect fit or an error ≥ 0.5 as sklearn does, and predicts
//              the weighted median of the trees;
//   `forest`   RandomForestRegressor: 100 fully grown trees, each on a bootstrap sample (n draws
//              with replacement, as counts), all features at every split, prediction = their mean.
// Randomness (feature order per node, resampling) comes from a std::mt19937_64 seeded with
// ForecasterOptions::seed, so a seed gives the same model; scikit-learn's own random streams cannot
// be reproduced, so the two agree statistically, not draw for draw.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "forecast/features.h"
#include "forecast/tree.h"

namespace chase::forecast_detail {

namespace {

class GradientBoosting final : public FeatureForecaster {
 public:
  explicit GradientBoosting(std::uint64_t seed) : seed_(seed) {}
  std::string_view name() const noexcept override { return "gboost"; }

 protected:
  void fit_features(const Features& train) override {
    std::mt19937_64 rng(seed_);
    const std::vector<float> x = to_float32(train);
    const std::size_t n = train.rows;
    init_ = std::accumulate(train.y.begin(), train.y.end(), 0.0) / static_cast<double>(n);
    std::vector<double> current(n, init_), residual(n);
    trees_.assign(kStages, RegressionTree{});
    for (auto& tree : trees_) {
      for (std::size_t i = 0; i < n; ++i) residual[i] = train.y[i] - current[i];
      tree.fit(x.data(), n, residual.data(), nullptr, kDepth, rng);
      for (std::size_t i = 0; i < n; ++i) {
        current[i] += kLearningRate * tree.predict(x.data() + i * kFeatureCount);
      }
    }
  }

  std::vector<double> predict_features(const Features& test) const override {
    const std::vector<float> x = to_float32(test);
    std::vector<double> out(test.rows, init_);
    for (const auto& tree : trees_) {
      for (std::size_t i = 0; i < test.rows; ++i) {
        out[i] += kLearningRate * tree.predict(x.data() + i * kFeatureCount);
      }
    }
    return out;
  }

 private:
  static constexpr std::size_t kStages = 100;
  static constexpr int kDepth = 3;
  static constexpr double kLearningRate = 0.1;
  std::uint64_t seed_;
  double init_ = 0;
  std::vector<RegressionTree> trees_;
};

class AdaBoostR2 final : public FeatureForecaster {
 public:
  explicit AdaBoostR2(std::uint64_t seed) : seed_(seed) {}
  std::string_view name() const noexcept override { return "adaboost"; }

 protected:
  void fit_features(const Features& train) override {
    std::mt19937_64 rng(seed_);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    const std::vector<float> x = to_float32(train);
    const std::size_t n = train.rows;
    std::vector<double> sample_weight(n, 1.0 / static_cast<double>(n));
    std::vector<double> cdf(n), counts(n), error(n);
    trees_.clear();
    tree_weights_.clear();
    for (std::size_t round = 0; round < kRounds; ++round) {
      // Weighted resample with replacement (numpy's choice(p=...): inverse CDF of a uniform).
      std::partial_sum(sample_weight.begin(), sample_weight.end(), cdf.begin());
      const double total = cdf.back();
      std::fill(counts.begin(), counts.end(), 0.0);
      for (std::size_t draw = 0; draw < n; ++draw) {
        const double u = uniform(rng) * total;
        auto it = std::upper_bound(cdf.begin(), cdf.end(), u);
        if (it == cdf.end()) --it;
        counts[static_cast<std::size_t>(it - cdf.begin())] += 1;
      }
      RegressionTree tree;
      tree.fit(x.data(), n, train.y.data(), counts.data(), kDepth, rng);

      // Linear loss, normalised by the largest error over the points with weight > 0.
      double error_max = 0;
      for (std::size_t i = 0; i < n; ++i) {
        error[i] = std::abs(tree.predict(x.data() + i * kFeatureCount) - train.y[i]);
        if (sample_weight[i] > 0) error_max = std::max(error_max, error[i]);
      }
      double estimator_error = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (sample_weight[i] <= 0) continue;
        if (error_max != 0) error[i] /= error_max;
        estimator_error += sample_weight[i] * error[i];
      }
      if (estimator_error <= 0) {  // a perfect fit: keep it with weight 1 and stop
        trees_.push_back(std::move(tree));
        tree_weights_.push_back(1.0);
        break;
      }
      if (estimator_error >= 0.5) {  // worse than chance: drop it (unless it is the only one)
        if (trees_.empty()) {
          trees_.push_back(std::move(tree));
          tree_weights_.push_back(0.0);
        }
        break;
      }
      const double beta = estimator_error / (1.0 - estimator_error);
      trees_.push_back(std::move(tree));
      tree_weights_.push_back(std::log(1.0 / beta));
      if (round + 1 == kRounds) break;
      double weight_sum = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (sample_weight[i] > 0) sample_weight[i] *= std::pow(beta, 1.0 - error[i]);
        weight_sum += sample_weight[i];
      }
      if (!(weight_sum > 0)) break;
      for (auto& weight : sample_weight) weight /= weight_sum;
    }
  }

  // The weighted median of the trees' predictions: the smallest prediction whose cumulative
  // weight (in ascending order) reaches half the total.
  std::vector<double> predict_features(const Features& test) const override {
    const std::vector<float> x = to_float32(test);
    std::vector<double> out(test.rows);
    std::vector<std::size_t> order(trees_.size());
    std::vector<double> predictions(trees_.size());
    for (std::size_t i = 0; i < test.rows; ++i) {
      for (std::size_t t = 0; t < trees_.size(); ++t) {
        predictions[t] = trees_[t].predict(x.data() + i * kFeatureCount);
      }
      std::iota(order.begin(), order.end(), std::size_t{0});
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return predictions[a] < predictions[b];
      });
      const double total = std::accumulate(tree_weights_.begin(), tree_weights_.end(), 0.0);
      double cumulative = 0;
      out[i] = predictions[order.back()];
      for (const std::size_t t : order) {
        cumulative += tree_weights_[t];
        if (cumulative >= 0.5 * total) {
          out[i] = predictions[t];
          break;
        }
      }
    }
    return out;
  }

 private:
  static constexpr std::size_t kRounds = 50;
  static constexpr int kDepth = 3;
  std::uint64_t seed_;
  std::vector<RegressionTree> trees_;
  std::vector<double> tree_weights_;
};

class RandomForest final : public FeatureForecaster {
 public:
  explicit RandomForest(std::uint64_t seed) : seed_(seed) {}
  std::string_view name() const noexcept override { return "forest"; }

 protected:
  void fit_features(const Features& train) override {
    std::mt19937_64 rng(seed_);
    const std::vector<float> x = to_float32(train);
    const std::size_t n = train.rows;
    std::uniform_int_distribution<std::size_t> pick(0, n - 1);
    std::vector<double> counts(n);
    trees_.assign(kTrees, RegressionTree{});
    for (auto& tree : trees_) {
      std::fill(counts.begin(), counts.end(), 0.0);
      for (std::size_t draw = 0; draw < n; ++draw) counts[pick(rng)] += 1;
      tree.fit(x.data(), n, train.y.data(), counts.data(), -1, rng);
    }
  }

  std::vector<double> predict_features(const Features& test) const override {
    const std::vector<float> x = to_float32(test);
    std::vector<double> out(test.rows, 0.0);
    for (std::size_t i = 0; i < test.rows; ++i) {
      for (const auto& tree : trees_) out[i] += tree.predict(x.data() + i * kFeatureCount);
      out[i] /= static_cast<double>(trees_.size());
    }
    return out;
  }

 private:
  static constexpr std::size_t kTrees = 100;
  std::uint64_t seed_;
  std::vector<RegressionTree> trees_;
};

}  // namespace

std::unique_ptr<Forecaster> make_gboost(const ForecasterOptions& options) {
  return std::make_unique<GradientBoosting>(options.seed);
}

std::unique_ptr<Forecaster> make_adaboost(const ForecasterOptions& options) {
  return std::make_unique<AdaBoostR2>(options.seed);
}

std::unique_ptr<Forecaster> make_forest(const ForecasterOptions& options) {
  return std::make_unique<RandomForest>(options.seed);
}

}  // namespace chase::forecast_detail
