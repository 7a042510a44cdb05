#include "forecast/tree.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <limits>
#include <numeric>

namespace chase::forecast_detail {

namespace {

constexpr double kFeatureThreshold = 1e-7;  // sklearn's FEATURE_THRESHOLD

}  // namespace

std::vector<float> to_float32(const Features& features) {
  std::vector<float> out(features.x.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(features.x[i]);
  return out;
}

void RegressionTree::fit(const float* x, std::size_t n, const double* y, const double* w,
                         int max_depth, std::mt19937_64& rng) {
  x_ = x;
  y_ = y;
  w_ = w;
  max_depth_ = max_depth;
  rng_ = &rng;
  nodes_.clear();
  std::vector<std::size_t> index;
  index.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (w == nullptr || w[i] != 0) index.push_back(i);
  }
  if (index.empty()) {
    nodes_.push_back(Node{});  // nothing to learn from: predicts 0
  } else {
    build(index, 0, index.size(), 0);
  }
  x_ = nullptr;
  y_ = nullptr;
  w_ = nullptr;
  rng_ = nullptr;
}

std::size_t RegressionTree::build(std::vector<std::size_t>& index, std::size_t begin,
                                  std::size_t end, int depth) {
  double weight = 0, sum = 0, square_sum = 0;
  for (std::size_t p = begin; p < end; ++p) {
    const std::size_t i = index[p];
    const double wi = w_ == nullptr ? 1.0 : w_[i];
    weight += wi;
    sum += wi * y_[i];
    square_sum += wi * y_[i] * y_[i];
  }
  const std::size_t id = nodes_.size();
  nodes_.push_back(Node{});
  nodes_[id].value = sum / weight;
  const double mean = sum / weight;
  const double impurity = square_sum / weight - mean * mean;
  const bool leaf =
      (max_depth_ >= 0 && depth >= max_depth_) || end - begin < 2 || impurity <= DBL_EPSILON;
  if (leaf) return id;

  std::array<std::size_t, kFeatureCount> order{};
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), *rng_);

  double best_proxy = -std::numeric_limits<double>::infinity();
  int best_feature = -1;
  double best_threshold = 0;
  std::vector<std::size_t> sorted(index.begin() + static_cast<std::ptrdiff_t>(begin),
                                  index.begin() + static_cast<std::ptrdiff_t>(end));
  for (const std::size_t f : order) {
    std::sort(sorted.begin(), sorted.end(), [&](std::size_t a, std::size_t b) {
      return x_[a * kFeatureCount + f] < x_[b * kFeatureCount + f];
    });
    const auto value = [&](std::size_t p) { return x_[sorted[p] * kFeatureCount + f]; };
    if (static_cast<double>(value(sorted.size() - 1)) <=
        static_cast<double>(value(0)) + kFeatureThreshold) {
      continue;  // constant feature in this node
    }
    double left_weight = 0, left_sum = 0;
    for (std::size_t p = 0; p + 1 < sorted.size(); ++p) {
      const std::size_t i = sorted[p];
      const double wi = w_ == nullptr ? 1.0 : w_[i];
      left_weight += wi;
      left_sum += wi * y_[i];
      const double here = value(p), next = value(p + 1);
      if (next <= here + kFeatureThreshold) continue;
      const double right_weight = weight - left_weight;
      const double right_sum = sum - left_sum;
      const double proxy = left_sum * left_sum / left_weight + right_sum * right_sum / right_weight;
      if (proxy > best_proxy) {
        best_proxy = proxy;
        best_feature = static_cast<int>(f);
        double threshold = here / 2.0 + next / 2.0;
        if (threshold == next || !std::isfinite(threshold)) threshold = here;
        best_threshold = threshold;
      }
    }
  }
  if (best_feature < 0) return id;

  const auto f = static_cast<std::size_t>(best_feature);
  const auto middle =
      std::partition(index.begin() + static_cast<std::ptrdiff_t>(begin),
                     index.begin() + static_cast<std::ptrdiff_t>(end), [&](std::size_t i) {
                       return static_cast<double>(x_[i * kFeatureCount + f]) <= best_threshold;
                     });
  const auto split = static_cast<std::size_t>(middle - index.begin());
  nodes_[id].feature = best_feature;
  nodes_[id].threshold = best_threshold;
  const std::size_t left = build(index, begin, split, depth + 1);
  const std::size_t right = build(index, split, end, depth + 1);
  nodes_[id].left = left;
  nodes_[id].right = right;
  return id;
}

double RegressionTree::predict(const float* row) const {
  std::size_t id = 0;
  while (nodes_[id].feature >= 0) {
    const Node& node = nodes_[id];
    id = static_cast<double>(row[static_cast<std::size_t>(node.feature)]) <= node.threshold
             ? node.left
             : node.right;
  }
  return nodes_[id].value;
}

}  // namespace chase::forecast_detail
