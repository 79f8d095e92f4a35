// The discrete VP noise schedule COP-GEN-Beta was trained with, seen in continuous time
// the way DPM-Solver sees it. Solvers only ever ask this object for alpha, sigma,
// lambda and the inverse of lambda; none of them hard-codes a schedule.
//
//   auto s = copgen::NoiseSchedule::scaled_linear();  // 0.00085 .. 0.012, N = 1000
//   double a = s.alpha(0.5), l = s.lambda(0.5), t = s.inverse_lambda(l);  // t == 0.5
#pragma once

#include <vector>

namespace copgen {

class NoiseSchedule {
 public:
  // betas_i = linspace(sqrt(beta_start), sqrt(beta_end), n)_i ^ 2, in float64.
  static NoiseSchedule scaled_linear(double beta_start = 0.00085, double beta_end = 0.012,
                                     int num_timesteps = 1000);

  int num_timesteps() const { return static_cast<int>(betas_.size()); }
  const std::vector<double>& betas() const { return betas_; }
  // Smallest and largest continuous time the solver uses: 1/N and 1.
  double t_min() const { return 1.0 / num_timesteps(); }
  double t_max() const { return 1.0; }

  // log(alpha_t): piecewise-linear through the knots (k/N, 0.5 * sum_{i<=k} log(1 - beta_i)),
  // k = 1..N, extended linearly past both ends.
  double log_alpha(double t) const;
  double alpha(double t) const;
  double sigma(double t) const;   // sqrt(1 - alpha^2)
  double lambda(double t) const;  // log(alpha / sigma), half the log-SNR
  // The time whose lambda is `lambda`: log_alpha = -0.5 * logaddexp(0, -2 lambda), then
  // the same piecewise-linear interpolation read backwards.
  double inverse_lambda(double lambda) const;

 private:
  std::vector<double> betas_;
  std::vector<double> knot_t_;          // k / N, increasing
  std::vector<double> knot_log_alpha_;  // decreasing
  std::vector<double> rev_log_alpha_;   // knot_log_alpha_ reversed (increasing), for the inverse
  std::vector<double> rev_t_;           // knot_t_ reversed
};

// Piecewise-linear interpolation through (xs, ys) with xs strictly increasing, extended
// linearly with the first (last) segment's slope outside [xs.front(), xs.back()].
double interpolate_linear(double x, const std::vector<double>& xs, const std::vector<double>& ys);

}  // namespace copgen
