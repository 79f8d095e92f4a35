#include "copgen/sampler.hpp"

#include <cmath>
#include <numeric>

#include "copgen/error.hpp"

namespace copgen {

std::string solver_name(Solver s) {
  switch (s) {
    case Solver::DpmSolverFast: return "dpm-solver-fast";
    case Solver::DpmSolverPP2M: return "dpm-solver++2m";
    case Solver::Ddim: return "ddim";
  }
  return "?";
}

Solver parse_solver(const std::string& name) {
  for (Solver s : {Solver::DpmSolverFast, Solver::DpmSolverPP2M, Solver::Ddim}) {
    if (name == solver_name(s)) return s;
  }
  throw UsageError("--solver: unknown solver '" + name +
                   "' (expected dpm-solver-fast, dpm-solver++2m or ddim)");
}

std::string time_grid_name(TimeGrid g) {
  return g == TimeGrid::TimeUniform ? "time-uniform" : "logSNR";
}

TimeGrid parse_time_grid(const std::string& name) {
  if (name == "time-uniform") return TimeGrid::TimeUniform;
  if (name == "logSNR" || name == "logsnr") return TimeGrid::LogSnr;
  throw UsageError("--time-grid: unknown grid '" + name + "' (expected time-uniform or logSNR)");
}

void validate(const SamplerOptions& o) {
  if (o.steps < 1) {
    throw UsageError("--steps: must be a positive number of network calls, got " +
                     std::to_string(o.steps));
  }
  if (o.order < 1 || o.order > 3) {
    throw UsageError("--order: must be 1, 2 or 3, got " + std::to_string(o.order));
  }
}

std::vector<double> time_grid(const NoiseSchedule& schedule, TimeGrid grid, int n, double t_T,
                              double t_0) {
  std::vector<double> ts(static_cast<size_t>(n) + 1);
  if (grid == TimeGrid::TimeUniform) {
    for (int i = 0; i <= n; ++i) ts[static_cast<size_t>(i)] = t_T + (t_0 - t_T) * i / n;
  } else {
    const double l_T = schedule.lambda(t_T), l_0 = schedule.lambda(t_0);
    for (int i = 0; i <= n; ++i) {
      ts[static_cast<size_t>(i)] = schedule.inverse_lambda(l_T + (l_0 - l_T) * i / n);
    }
  }
  ts.front() = t_T;
  ts.back() = t_0;
  return ts;
}

std::vector<int> singlestep_orders(int steps, int order) {
  std::vector<int> orders;
  if (order == 3) {
    const int k = steps / 3 + 1;
    if (steps % 3 == 0) {
      orders.assign(static_cast<size_t>(std::max(k - 2, 0)), 3);
      orders.push_back(2);
      orders.push_back(1);
    } else {
      orders.assign(static_cast<size_t>(k - 1), 3);
      orders.push_back(steps % 3);
    }
  } else if (order == 2) {
    orders.assign(static_cast<size_t>(steps / 2), 2);
    if (steps % 2) orders.push_back(1);
  } else {
    orders.assign(static_cast<size_t>(steps), 1);
  }
  return orders;
}

namespace {

// Data prediction D = (x - sigma_t eps) / alpha_t from the noise function.
struct DataPredictor {
  const NoiseFn& fn;
  const NoiseSchedule& schedule;
  const CallCallback& on_call;
  int calls_total;
  int calls = 0;

  torch::Tensor operator()(const torch::Tensor& x, double t) {
    torch::Tensor eps = fn(x, t);
    ++calls;
    if (on_call) on_call(calls, calls_total);
    return (x - schedule.sigma(t) * eps) / schedule.alpha(t);
  }
};

}  // namespace

torch::Tensor dpm_solver_singlestep(const NoiseFn& noise_fn, const NoiseSchedule& sch,
                                    torch::Tensor x, const std::vector<double>& ts,
                                    const std::vector<int>& orders, const CallCallback& on_call) {
  const int total = std::accumulate(orders.begin(), orders.end(), 0);
  if (static_cast<int>(ts.size()) != total + 1) {
    throw std::invalid_argument("dpm_solver_singlestep: timesteps must have sum(orders)+1 entries");
  }
  DataPredictor data{noise_fn, sch, on_call, total};
  size_t i = 0;
  for (int order : orders) {
    const double s = ts[i], t = ts[i + static_cast<size_t>(order)];
    const double lambda_s = sch.lambda(s), lambda_t = sch.lambda(t);
    const double h = lambda_t - lambda_s;
    const double sigma_s = sch.sigma(s), sigma_t = sch.sigma(t), alpha_t = sch.alpha(t);
    const double phi_1 = std::expm1(-h);

    const torch::Tensor d_s = data(x, s);
    if (order == 1) {
      x = (sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s;
    } else {
      const double r1 = (sch.lambda(ts[i + 1]) - lambda_s) / h;
      const double s1 = sch.inverse_lambda(lambda_s + r1 * h);
      const double sigma_s1 = sch.sigma(s1), alpha_s1 = sch.alpha(s1);
      const torch::Tensor x_s1 =
          (sigma_s1 / sigma_s) * x - (alpha_s1 * std::expm1(-r1 * h)) * d_s;
      const torch::Tensor d_s1 = data(x_s1, s1);
      if (order == 2) {
        x = (sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s -
            (0.5 / r1) * (alpha_t * phi_1) * (d_s1 - d_s);
      } else {
        const double r2 = (sch.lambda(ts[i + 2]) - lambda_s) / h;
        const double s2 = sch.inverse_lambda(lambda_s + r2 * h);
        const double sigma_s2 = sch.sigma(s2), alpha_s2 = sch.alpha(s2);
        const double phi_12 = std::expm1(-r2 * h);
        const double phi_22 = phi_12 / (r2 * h) + 1.0;
        const double phi_2 = phi_1 / h + 1.0;
        const torch::Tensor x_s2 = (sigma_s2 / sigma_s) * x - (alpha_s2 * phi_12) * d_s +
                                   (r2 / r1) * (alpha_s2 * phi_22) * (d_s1 - d_s);
        const torch::Tensor d_s2 = data(x_s2, s2);
        x = (sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s +
            (1.0 / r2) * (alpha_t * phi_2) * (d_s2 - d_s);
      }
    }
    i += static_cast<size_t>(order);
  }
  return x;
}

torch::Tensor dpm_solver_pp_2m(const NoiseFn& noise_fn, const NoiseSchedule& sch,
                               torch::Tensor x, const std::vector<double>& ts,
                               const CallCallback& on_call) {
  const int steps = static_cast<int>(ts.size()) - 1;
  DataPredictor data{noise_fn, sch, on_call, steps};
  torch::Tensor d_prev;
  double h_prev = 0.0;
  for (int k = 0; k < steps; ++k) {
    const double s = ts[static_cast<size_t>(k)], t = ts[static_cast<size_t>(k) + 1];
    const double h = sch.lambda(t) - sch.lambda(s);
    const double phi_1 = std::expm1(-h);
    const double sigma_s = sch.sigma(s), sigma_t = sch.sigma(t), alpha_t = sch.alpha(t);
    torch::Tensor d_s = data(x, s);
    if (k == 0) {
      x = (sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s;
    } else {
      const double r = h_prev / h;
      const torch::Tensor d1 = (1.0 / r) * (d_s - d_prev);
      x = (sigma_t / sigma_s) * x - (alpha_t * phi_1) * d_s - 0.5 * (alpha_t * phi_1) * d1;
    }
    d_prev = d_s;
    h_prev = h;
  }
  return x;
}

torch::Tensor ddim(const NoiseFn& noise_fn, const NoiseSchedule& sch, torch::Tensor x,
                   const std::vector<double>& ts, const CallCallback& on_call) {
  const int steps = static_cast<int>(ts.size()) - 1;
  for (int k = 0; k < steps; ++k) {
    const double s = ts[static_cast<size_t>(k)], t = ts[static_cast<size_t>(k) + 1];
    const torch::Tensor eps = noise_fn(x, s);
    if (on_call) on_call(k + 1, steps);
    const torch::Tensor d = (x - sch.sigma(s) * eps) / sch.alpha(s);
    x = sch.alpha(t) * d + sch.sigma(t) * eps;
  }
  return x;
}

torch::Tensor sample(const NoiseFn& noise_fn, const NoiseSchedule& schedule,
                     const torch::Tensor& x_T, const SamplerOptions& o) {
  validate(o);
  const double t_T = schedule.t_max(), t_0 = schedule.t_min();
  const std::vector<double> ts = time_grid(schedule, o.grid, o.steps, t_T, t_0);
  switch (o.solver) {
    case Solver::DpmSolverFast:
      return dpm_solver_singlestep(noise_fn, schedule, x_T, ts, singlestep_orders(o.steps, o.order),
                                   o.on_call);
    case Solver::DpmSolverPP2M:
      return dpm_solver_pp_2m(noise_fn, schedule, x_T, ts, o.on_call);
    case Solver::Ddim:
      return ddim(noise_fn, schedule, x_T, ts, o.on_call);
  }
  throw std::logic_error("unknown solver");
}

}  // namespace copgen
