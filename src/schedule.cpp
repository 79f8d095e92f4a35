#include "copgen/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace copgen {

NoiseSchedule NoiseSchedule::scaled_linear(double beta_start, double beta_end, int n) {
  if (n < 2) throw std::invalid_argument("noise schedule needs at least 2 timesteps");
  NoiseSchedule s;
  s.betas_.resize(static_cast<size_t>(n));
  const double a = std::sqrt(beta_start), b = std::sqrt(beta_end);
  double cum = 0.0;
  s.knot_t_.resize(static_cast<size_t>(n));
  s.knot_log_alpha_.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    // numpy/torch linspace: start + i * step, the last point exactly `end`
    const double r = (i == n - 1) ? b : a + (b - a) * static_cast<double>(i) / (n - 1);
    const double beta = r * r;
    s.betas_[static_cast<size_t>(i)] = beta;
    cum += std::log1p(-beta);
    s.knot_t_[static_cast<size_t>(i)] = static_cast<double>(i + 1) / n;
    s.knot_log_alpha_[static_cast<size_t>(i)] = 0.5 * cum;
  }
  s.rev_log_alpha_.assign(s.knot_log_alpha_.rbegin(), s.knot_log_alpha_.rend());
  s.rev_t_.assign(s.knot_t_.rbegin(), s.knot_t_.rend());
  return s;
}

double interpolate_linear(double x, const std::vector<double>& xs, const std::vector<double>& ys) {
  const size_t n = xs.size();
  size_t hi;
  if (x <= xs.front()) {
    hi = 1;
  } else if (x >= xs.back()) {
    hi = n - 1;
  } else {
    hi = static_cast<size_t>(std::upper_bound(xs.begin(), xs.end(), x) - xs.begin());
  }
  const size_t lo = hi - 1;
  const double w = (x - xs[lo]) / (xs[hi] - xs[lo]);
  return ys[lo] + w * (ys[hi] - ys[lo]);
}

double NoiseSchedule::log_alpha(double t) const {
  return interpolate_linear(t, knot_t_, knot_log_alpha_);
}

double NoiseSchedule::alpha(double t) const { return std::exp(log_alpha(t)); }

double NoiseSchedule::sigma(double t) const {
  // sqrt(1 - exp(2 log_alpha)), computed without cancellation near t = 0
  return std::sqrt(-std::expm1(2.0 * log_alpha(t)));
}

double NoiseSchedule::lambda(double t) const {
  const double la = log_alpha(t);
  const double log_sigma = 0.5 * std::log(-std::expm1(2.0 * la));
  return la - log_sigma;
}

double NoiseSchedule::inverse_lambda(double lambda) const {
  // logaddexp(0, -2 lambda), stable for both signs
  const double x = -2.0 * lambda;
  const double lae = std::max(0.0, x) + std::log1p(std::exp(-std::abs(x)));
  const double log_alpha = -0.5 * lae;
  // knots read backwards: log_alpha increasing, t decreasing
  return interpolate_linear(log_alpha, rev_log_alpha_, rev_t_);
}

}  // namespace copgen
