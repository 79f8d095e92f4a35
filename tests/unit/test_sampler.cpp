// Solvers against ODEs with closed-form solutions. The diffusion ODE in data-prediction
// form has the exact solution x_t = (sigma_t/sigma_s) x_s + sigma_t * int e^lambda D dlambda;
// with D = c (constant) every solver is exact, with D = a x it is
// x_t / sigma_t = x_s / sigma_s * exp(a (asinh(e^lambda_t) - asinh(e^lambda_s))).
#include "catch_torch.hpp"

#include <cmath>
#include <numeric>

#include "copgen/error.hpp"
#include "copgen/sampler.hpp"

using namespace copgen;

namespace {

const NoiseSchedule& schedule() {
  static const NoiseSchedule s = NoiseSchedule::scaled_linear();
  return s;
}

torch::Tensor start_state() {
  return torch::tensor({0.7, -1.3, 2.0}, torch::kFloat64);
}

// Noise prediction whose data prediction is D(x, t) = a x + c.
NoiseFn linear_model(double a, double c) {
  return [a, c](const torch::Tensor& x, double t) {
    const double alpha = schedule().alpha(t), sigma = schedule().sigma(t);
    return (x - alpha * (a * x + c)) / sigma;
  };
}

torch::Tensor exact_linear(const torch::Tensor& x_T, double a, double t_T, double t_0) {
  const auto& s = schedule();
  const double g = a * (std::asinh(std::exp(s.lambda(t_0))) - std::asinh(std::exp(s.lambda(t_T))));
  return x_T * (s.sigma(t_0) / s.sigma(t_T)) * std::exp(g);
}

torch::Tensor exact_constant(const torch::Tensor& x_T, double c, double t_T, double t_0) {
  const auto& s = schedule();
  return (s.sigma(t_0) / s.sigma(t_T)) * x_T +
         c * (s.alpha(t_0) - s.sigma(t_0) * s.alpha(t_T) / s.sigma(t_T));
}

double max_err(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// Convergence is measured on the logSNR grid: the solvers integrate in lambda, and the
// time-uniform grid's last step spans a lambda range that shrinks only logarithmically
// with the step count, far from the asymptotic regime at any affordable count.
torch::Tensor run_singlestep(int order, int steps, double a, double c) {
  const auto ts = time_grid(schedule(), TimeGrid::LogSnr, steps, 1.0, 0.001);
  std::vector<int> orders(static_cast<size_t>(steps / order), order);
  return dpm_solver_singlestep(linear_model(a, c), schedule(), start_state(), ts, orders);
}

// Observed order of accuracy from the errors at n and 2n steps.
double observed_order(double e_n, double e_2n) { return std::log2(e_n / e_2n); }

}  // namespace

TEST_CASE("sampler: reference order schedule for the fast singlestep solver", "[sampler]") {
  auto o50 = singlestep_orders(50, 3);
  CHECK(o50.size() == 17);
  CHECK(std::count(o50.begin(), o50.end(), 3) == 16);
  CHECK(o50.back() == 2);
  CHECK(singlestep_orders(51, 3) == std::vector<int>(
      {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 1}));
  CHECK(singlestep_orders(49, 3).back() == 1);
  CHECK(singlestep_orders(3, 3) == std::vector<int>({2, 1}));
  CHECK(singlestep_orders(7, 2) == std::vector<int>({2, 2, 2, 1}));
  CHECK(singlestep_orders(4, 1) == std::vector<int>({1, 1, 1, 1}));
  for (int n = 1; n <= 60; ++n) {
    for (int order = 1; order <= 3; ++order) {
      auto o = singlestep_orders(n, order);
      CHECK(std::accumulate(o.begin(), o.end(), 0) == n);
    }
  }
}

TEST_CASE("sampler: every solver is exact when the data prediction is constant", "[sampler]") {
  const double c = 0.37;
  const auto want = exact_constant(start_state(), c, 1.0, 0.001);
  for (Solver solver : {Solver::DpmSolverFast, Solver::DpmSolverPP2M, Solver::Ddim}) {
    for (TimeGrid grid : {TimeGrid::TimeUniform, TimeGrid::LogSnr}) {
      SamplerOptions o;
      o.solver = solver;
      o.grid = grid;
      o.steps = 10;
      const auto got = sample(linear_model(0.0, c), schedule(), start_state(), o);
      INFO(solver_name(solver) << " " << time_grid_name(grid));
      CHECK(max_err(got, want) < 1e-9);
    }
  }
}

TEST_CASE("sampler: singlestep orders 1 - 2 - 3 converge at their order", "[sampler]") {
  const double a = 0.8;
  const auto want = exact_linear(start_state(), a, 1.0, 0.001);
  for (int order = 1; order <= 3; ++order) {
    const int n = 12 * order;
    const double e1 = max_err(run_singlestep(order, n, a, 0.0), want);
    const double e2 = max_err(run_singlestep(order, 2 * n, a, 0.0), want);
    const double e4 = max_err(run_singlestep(order, 4 * n, a, 0.0), want);
    INFO("order " << order << " errors " << e1 << " " << e2 << " " << e4);
    CHECK(e2 < e1);
    CHECK(observed_order(e2, e4) > order - 0.3);
    CHECK(observed_order(e2, e4) < order + 0.7);
  }
}

TEST_CASE("sampler: DPM-Solver++(2M) converges at second order - DDIM at first", "[sampler]") {
  const double a = 0.8;
  const auto want = exact_linear(start_state(), a, 1.0, 0.001);
  auto err = [&](Solver s, int steps) {
    SamplerOptions o;
    o.solver = s;
    o.steps = steps;
    o.grid = TimeGrid::LogSnr;
    return max_err(sample(linear_model(a, 0.0), schedule(), start_state(), o), want);
  };
  const double m1 = err(Solver::DpmSolverPP2M, 40), m2 = err(Solver::DpmSolverPP2M, 80);
  const double d1 = err(Solver::Ddim, 40), d2 = err(Solver::Ddim, 80);
  INFO("2M " << m1 << " " << m2 << " DDIM " << d1 << " " << d2);
  CHECK(observed_order(m1, m2) > 1.7);
  CHECK(observed_order(m1, m2) < 2.7);
  CHECK(observed_order(d1, d2) > 0.8);
  CHECK(observed_order(d1, d2) < 1.5);
}

TEST_CASE("sampler: DDIM equals first-order DPM-Solver++", "[sampler]") {
  const auto ts = time_grid(schedule(), TimeGrid::TimeUniform, 9, 1.0, 0.001);
  const auto a = ddim(linear_model(0.5, 0.2), schedule(), start_state(), ts);
  const auto b = dpm_solver_singlestep(linear_model(0.5, 0.2), schedule(), start_state(), ts,
                                       std::vector<int>(9, 1));
  CHECK(max_err(a, b) < 1e-12);
}

TEST_CASE("sampler: the reference solver calls the network 50 times at the expected times", "[sampler]") {
  std::vector<double> calls;
  int progress_calls = 0;
  NoiseFn fn = [&](const torch::Tensor& x, double t) {
    calls.push_back(t);
    return torch::zeros_like(x);
  };
  SamplerOptions o;  // defaults: fast, order 3, 50 calls, time-uniform
  o.on_call = [&](int done, int total) {
    ++progress_calls;
    CHECK(total == 50);
    CHECK(done == progress_calls);
  };
  sample(fn, schedule(), start_state(), o);
  REQUIRE(calls.size() == 50);
  CHECK(progress_calls == 50);
  // grid t_i = linspace(1, 1/N, 51): calls at every grid point but the last; the
  // intermediate ones are reached through inverse_lambda, so equal up to rounding
  for (size_t i = 0; i < calls.size(); ++i) {
    const double grid = 1.0 + (0.001 - 1.0) * static_cast<double>(i) / 50.0;
    CHECK(calls[i] == Approx(grid).epsilon(1e-9));
  }
}

TEST_CASE("sampler: options are validated", "[sampler]") {
  SamplerOptions o;
  o.steps = 0;
  CHECK_THROWS_AS(validate(o), UsageError);
  CHECK_THROWS_WITH(validate(o), Catch::Contains("--steps"));
  o.steps = 5;
  o.order = 4;
  CHECK_THROWS_AS(validate(o), UsageError);
  CHECK(parse_solver("dpm-solver++2m") == Solver::DpmSolverPP2M);
  CHECK_THROWS_WITH(parse_solver("euler"), Catch::Contains("--solver"));
  CHECK(parse_time_grid("logSNR") == TimeGrid::LogSnr);
}
