// The noise schedule against an independent float64 computation: alphas_cumprod as a
// running product of (1 - beta), not the running sum of logs the library uses.
#include "catch_torch.hpp"

#include <cmath>
#include <vector>

#include "copgen/schedule.hpp"

using copgen::NoiseSchedule;

namespace {

// abar_k = prod_{i<=k} (1 - beta_i), k = 1..N, betas = linspace(sqrt(b0), sqrt(b1), N)^2.
std::vector<double> alphas_cumprod(double b0, double b1, int n) {
  std::vector<double> out;
  double prod = 1.0;
  for (int i = 0; i < n; ++i) {
    const double r = std::sqrt(b0) + (std::sqrt(b1) - std::sqrt(b0)) * i / (n - 1);
    prod *= 1.0 - r * r;
    out.push_back(prod);
  }
  return out;
}

}  // namespace

TEST_CASE("schedule: alpha and sigma at the knots equal sqrt(abar) and sqrt(1 - abar)", "[schedule]") {
  const auto s = NoiseSchedule::scaled_linear();
  const auto abar = alphas_cumprod(0.00085, 0.012, 1000);
  for (int k : {1, 2, 10, 250, 500, 999, 1000}) {
    const double t = k / 1000.0;
    const double want_alpha = std::sqrt(abar[static_cast<size_t>(k - 1)]);
    CHECK(s.alpha(t) == Approx(want_alpha).epsilon(1e-12));
    CHECK(s.sigma(t) == Approx(std::sqrt(1.0 - abar[static_cast<size_t>(k - 1)])).epsilon(1e-12));
    CHECK(s.lambda(t) == Approx(std::log(want_alpha) - 0.5 * std::log(1.0 - abar[static_cast<size_t>(k - 1)])).epsilon(1e-12));
  }
  // Stable Diffusion's last alphas_cumprod, 0.00466
  CHECK(abar.back() == Approx(0.00466).epsilon(1e-3));
  CHECK(s.alpha(1.0) * s.alpha(1.0) == Approx(abar.back()).epsilon(1e-12));
}

TEST_CASE("schedule: log alpha is linear between knots and extrapolated past the ends", "[schedule]") {
  const auto s = NoiseSchedule::scaled_linear();
  const auto abar = alphas_cumprod(0.00085, 0.012, 1000);
  const double la250 = 0.5 * std::log(abar[249]), la251 = 0.5 * std::log(abar[250]);
  CHECK(s.log_alpha(0.2505) == Approx(0.5 * (la250 + la251)).epsilon(1e-12));
  CHECK(s.log_alpha(0.2503) == Approx(la250 + 0.3 * (la251 - la250)).epsilon(1e-12));
  // below the first knot (t = 0.001) the first segment continues: t = 0 gives 2*la1 - la2
  const double la1 = 0.5 * std::log(abar[0]), la2 = 0.5 * std::log(abar[1]);
  CHECK(s.log_alpha(0.0) == Approx(2 * la1 - la2).margin(1e-15));
  CHECK(s.t_min() == 0.001);
  CHECK(s.num_timesteps() == 1000);
}

TEST_CASE("schedule: inverse_lambda inverts lambda", "[schedule]") {
  const auto s = NoiseSchedule::scaled_linear();
  for (double t : {0.001, 0.0015, 0.01, 0.1234, 0.5, 0.77777, 0.999, 1.0}) {
    CHECK(s.inverse_lambda(s.lambda(t)) == Approx(t).epsilon(1e-9).margin(1e-12));
  }
  // lambda falls monotonically from about +3.53 at t = 1/N to about -2.682 at t = 1
  CHECK(s.lambda(0.001) == Approx(3.5347).epsilon(1e-4));
  CHECK(s.lambda(1.0) == Approx(-2.68202).epsilon(1e-5));
  CHECK(s.lambda(0.3) > s.lambda(0.31));
}

TEST_CASE("schedule: interpolate_linear extends the end segments", "[schedule]") {
  const std::vector<double> xs{0, 1, 3}, ys{0, 2, 3};
  CHECK(copgen::interpolate_linear(0.5, xs, ys) == 1.0);
  CHECK(copgen::interpolate_linear(2.0, xs, ys) == 2.5);
  CHECK(copgen::interpolate_linear(-1.0, xs, ys) == -2.0);
  CHECK(copgen::interpolate_linear(5.0, xs, ys) == 4.0);
}
