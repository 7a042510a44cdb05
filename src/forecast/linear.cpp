// `linear`: ordinary least squares with an intercept, as scikit-learn's LinearRegression: centre
// the features and the target, solve the least-squares problem for the minimum-norm coefficients
// (an SVD, like LAPACK's gelsd that scikit-learn calls), intercept = ȳ − x̄·β.
#include <Eigen/Dense>

#include "forecast/features.h"

namespace chase::forecast_detail {

namespace {

class Linear final : public FeatureForecaster {
 public:
  std::string_view name() const noexcept override { return "linear"; }

 protected:
  void fit_features(const Features& train) override {
    const auto n = static_cast<Eigen::Index>(train.rows);
    constexpr auto k = static_cast<Eigen::Index>(kFeatureCount);
    Eigen::MatrixXd x(n, k);
    Eigen::VectorXd y(n);
    for (Eigen::Index i = 0; i < n; ++i) {
      const double* row = train.row(static_cast<std::size_t>(i));
      for (Eigen::Index j = 0; j < k; ++j) x(i, j) = row[j];
      y(i) = train.y[static_cast<std::size_t>(i)];
    }
    const Eigen::RowVectorXd x_mean = x.colwise().mean();
    const double y_mean = y.mean();
    x.rowwise() -= x_mean;
    y.array() -= y_mean;
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(x, Eigen::ComputeThinU | Eigen::ComputeThinV);
    coef_ = svd.solve(y);
    intercept_ = y_mean - x_mean.dot(coef_);
  }

  std::vector<double> predict_features(const Features& test) const override {
    std::vector<double> out(test.rows);
    for (std::size_t i = 0; i < test.rows; ++i) {
      double value = intercept_;
      for (std::size_t j = 0; j < kFeatureCount; ++j) {
        value += coef_(static_cast<Eigen::Index>(j)) * test.row(i)[j];
      }
      out[i] = value;
    }
    return out;
  }

 private:
  Eigen::VectorXd coef_;
  double intercept_ = 0;
};

}  // namespace

std::unique_ptr<Forecaster> make_linear(const ForecasterOptions&) {
  return std::make_unique<Linear>();
}

}  // namespace chase::forecast_detail
