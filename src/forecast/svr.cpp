// `svr`: ε-support-vector regression with scikit-learn SVR's published settings: RBF kernel
// exp(−γ‖a − b‖²) with γ = 1e-4, C = 100, ε = 0.1, unscaled features, solver tolerance 1e-3.
// dlib's svr_trainer is an SMO solver for the same dual problem (it follows LIBSVM, which
// scikit-learn wraps), so the two fit the same function up to the solver's tolerance.
#include <dlib/svm.h>
#include <fmt/format.h>

#include "chase/error.h"
#include "forecast/features.h"

namespace chase::forecast_detail {

namespace {

using Sample = dlib::matrix<double, kFeatureCount, 1>;
using Kernel = dlib::radial_basis_kernel<Sample>;

class SupportVectorRegression final : public FeatureForecaster {
 public:
  std::string_view name() const noexcept override { return "svr"; }

 protected:
  void fit_features(const Features& train) override {
    std::vector<Sample> samples(train.rows);
    for (std::size_t i = 0; i < train.rows; ++i) samples[i] = to_sample(train.row(i));
    dlib::svr_trainer<Kernel> trainer;
    trainer.set_kernel(Kernel(kGamma));
    trainer.set_c(kC);
    trainer.set_epsilon_insensitivity(kEpsilon);
    trainer.set_epsilon(kTolerance);
    try {
      function_ = trainer.train(samples, train.y);
    } catch (const dlib::error& error) {
      throw Error(ErrorCode::kInternal,
                  fmt::format("Forecaster 'svr': dlib's SVR solver failed on {} points: {}",
                              train.rows, error.what()));
    }
  }

  std::vector<double> predict_features(const Features& test) const override {
    std::vector<double> out(test.rows);
    for (std::size_t i = 0; i < test.rows; ++i) out[i] = function_(to_sample(test.row(i)));
    return out;
  }

 private:
  static Sample to_sample(const double* row) {
    Sample sample;
    for (long j = 0; j < static_cast<long>(kFeatureCount); ++j) {
      sample(j) = row[static_cast<std::size_t>(j)];
    }
    return sample;
  }

  static constexpr double kGamma = 1e-4;
  static constexpr double kC = 100;
  static constexpr double kEpsilon = 0.1;
  static constexpr double kTolerance = 1e-3;
  dlib::decision_function<Kernel> function_;
};

}  // namespace

std::unique_ptr<Forecaster> make_svr(const ForecasterOptions&) {
  return std::make_unique<SupportVectorRegression>();
}

}  // namespace chase::forecast_detail
