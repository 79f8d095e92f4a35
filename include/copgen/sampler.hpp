// Diffusion ODE solvers as pure functions of (noise-prediction function, schedule,
// time grid, initial state). The network is hidden behind NoiseFn, so each solver is
// unit-tested against an analytic model whose exact solution is known.
//
//   copgen::SamplerOptions o;            // DPM-Solver "fast", order 3, 50 calls
//   auto x0 = copgen::sample(eps_fn, schedule, x_T, o);
//
// NoiseFn(x, t) returns the predicted noise eps_hat for state x at continuous time t in
// [1/N, 1]; the network label is t * N. Solvers work on data predictions
// D = (x - sigma_t * eps_hat) / alpha_t (the DPM-Solver++ form).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "copgen/schedule.hpp"

namespace copgen {

enum class Solver {
  DpmSolverFast,  // the reference: singlestep DPM-Solver(++) "fast", order 3 by default
  DpmSolverPP2M,  // DPM-Solver++(2M) multistep
  Ddim,           // DDIM (eta = 0), first order
};

enum class TimeGrid {
  TimeUniform,  // t uniform in [1/N, 1] (the reference's)
  LogSnr,       // lambda uniform between lambda(1) and lambda(1/N)
};

using NoiseFn = std::function<torch::Tensor(const torch::Tensor& x, double t)>;
// Called after every network call with (calls done, calls in total).
using CallCallback = std::function<void(int, int)>;

struct SamplerOptions {
  Solver solver = Solver::DpmSolverFast;  // --solver
  int steps = 50;                         // network calls (NFE), --steps
  int order = 3;                          // order of the singlestep solver (1..3)
  TimeGrid grid = TimeGrid::TimeUniform;  // --time-grid
  CallCallback on_call;                   // progress; may throw to cancel
};

std::string solver_name(Solver s);      // "dpm-solver-fast", "dpm-solver++2m", "ddim"
Solver parse_solver(const std::string& name);  // throws UsageError naming --solver
std::string time_grid_name(TimeGrid g);  // "time-uniform", "logSNR"
TimeGrid parse_time_grid(const std::string& name);  // throws UsageError naming --time-grid

// Validates options (steps >= 1, order 1..3); throws UsageError naming the flag.
void validate(const SamplerOptions& options);

// Solves from x_T at t = 1 down to t = 1/N with options.steps network calls.
torch::Tensor sample(const NoiseFn& noise_fn, const NoiseSchedule& schedule,
                     const torch::Tensor& x_T, const SamplerOptions& options);

// n + 1 decreasing times from t_T to t_0.
std::vector<double> time_grid(const NoiseSchedule& schedule, TimeGrid grid, int n, double t_T,
                              double t_0);

// The per-step orders of the singlestep "fast" schedule for `steps` calls, e.g.
// 50 calls at order 3 -> sixteen 3s and one 2 (they sum to `steps`).
std::vector<int> singlestep_orders(int steps, int order);

// DPM-Solver++ singlestep (Lu et al. 2022, arXiv 2211.01095, the data-prediction form of
// the singlestep solvers of arXiv 2206.00927). `timesteps` has sum(orders) + 1 decreasing
// entries; a step of order k goes from timesteps[i] to timesteps[i + k] and places its
// intermediate points at the lambdas of the grid points in between.
torch::Tensor dpm_solver_singlestep(const NoiseFn& noise_fn, const NoiseSchedule& schedule,
                                    torch::Tensor x, const std::vector<double>& timesteps,
                                    const std::vector<int>& orders,
                                    const CallCallback& on_call = {});

// DPM-Solver++(2M) (Lu et al. 2022, arXiv 2211.01095, Algorithm 2): one call per step,
// the first step first order, every later one second order from the last two data
// predictions.
torch::Tensor dpm_solver_pp_2m(const NoiseFn& noise_fn, const NoiseSchedule& schedule,
                               torch::Tensor x, const std::vector<double>& timesteps,
                               const CallCallback& on_call = {});

// DDIM with eta = 0 (Song et al. 2021, arXiv 2010.02502): x_t = alpha_t D + sigma_t eps.
torch::Tensor ddim(const NoiseFn& noise_fn, const NoiseSchedule& schedule, torch::Tensor x,
                   const std::vector<double>& timesteps, const CallCallback& on_call = {});

}  // namespace copgen
