#include "copgen/conditioning.hpp"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "copgen/cuda.hpp"
#include "copgen/error.hpp"
#include "copgen/models.hpp"

namespace copgen {

void validate(const Guidance& g) {
  if (!std::isfinite(g.scale) || std::abs(g.scale) > kMaxGuidanceScale) {
    throw UsageError(fmt::format("--guidance-scale: must be a finite number from -{0:g} to {0:g}, got {1:g}",
                                 kMaxGuidanceScale, g.scale));
  }
}

Roles Roles::make(std::vector<Modality> given, std::vector<Modality> generated) {
  Roles r;
  r.given = sorted_modalities(std::move(given));
  r.generated = sorted_modalities(std::move(generated));
  if (r.generated.empty()) throw UsageError("--to: nothing to generate");
  for (Modality m : r.generated) {
    if (std::find(r.given.begin(), r.given.end(), m) != r.given.end()) {
      throw UsageError("--to " + modality_name(m) + " is also given with --from");
    }
  }
  for (Modality m : kAllModalities) {
    if (std::find(r.given.begin(), r.given.end(), m) == r.given.end() &&
        std::find(r.generated.begin(), r.generated.end(), m) == r.generated.end()) {
      r.unused.push_back(m);
    }
  }
  return r;
}

Draws draw_noise(at::Generator& gen, const Roles& roles, const std::vector<bool>& needs_eps,
                 std::int64_t b, const LatentShape& s, bool guidance) {
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  Draws d;
  d.x_T = torch::randn({static_cast<std::int64_t>(roles.generated.size()), b, s[0], s[1], s[2]}, gen, f32);
  for (size_t i = 0; i < roles.given.size(); ++i) {
    const bool draw = i < needs_eps.size() && needs_eps[i];
    d.posterior_eps.push_back(draw ? torch::randn({b, s[0], s[1], s[2]}, gen, f32) : torch::Tensor());
  }
  for (size_t i = 0; i < roles.unused.size(); ++i) {
    d.unused_noise.push_back(torch::randn({b, s[0], s[1], s[2]}, gen, f32));
  }
  if (guidance) {
    for (size_t i = 0; i < roles.given.size(); ++i) {
      d.guidance_noise.push_back(torch::randn({b, s[0], s[1], s[2]}, gen, f32));
    }
  }
  return d;
}

torch::Tensor latent_from_moments(const torch::Tensor& moments, const torch::Tensor& eps, double scale) {
  const int64_t dim = moments.dim() - 3;  // channel dimension
  const int64_t c = moments.size(dim) / 2;
  const torch::Tensor mean = moments.narrow(dim, 0, c);
  if (!eps.defined()) return scale * mean;
  const torch::Tensor logvar = moments.narrow(dim, c, c);
  return scale * (mean + torch::exp(0.5 * torch::clamp(logvar, -30.0, 20.0)) * eps);
}

torch::Tensor predict_generated(Models& models, const Roles& roles, const torch::Tensor& x, double t_label,
                                const std::vector<torch::Tensor>& given_latents, double given_label,
                                const std::vector<torch::Tensor>& unused_noise) {
  const int64_t b = x.size(1);
  const double n = models.schedule().num_timesteps();
  std::vector<torch::Tensor> zs(kNumModalities);
  std::vector<float> ts(kNumModalities);
  for (size_t i = 0; i < roles.generated.size(); ++i) {
    const auto m = static_cast<size_t>(modality_index(roles.generated[i]));
    zs[m] = x[static_cast<int64_t>(i)];
    ts[m] = static_cast<float>(t_label);
  }
  for (size_t i = 0; i < roles.given.size(); ++i) {
    const auto m = static_cast<size_t>(modality_index(roles.given[i]));
    zs[m] = given_latents[i];
    ts[m] = static_cast<float>(given_label);
  }
  for (size_t i = 0; i < roles.unused.size(); ++i) {
    const auto m = static_cast<size_t>(modality_index(roles.unused[i]));
    zs[m] = unused_noise[i];
    ts[m] = static_cast<float>(n);
  }
  const torch::Tensor z_all = torch::stack(zs, 1);
  const torch::Tensor t_all =
      torch::tensor(ts, torch::kFloat32).unsqueeze(0).expand({b, kNumModalities}).contiguous();
  const torch::Tensor eps = models.predict_noise(z_all, t_all);
  std::vector<torch::Tensor> out;
  for (Modality m : roles.generated) out.push_back(eps.select(1, modality_index(m)));
  return torch::stack(out, 0);
}

NoiseFn joint_noise_fn(Models& models, const Roles& roles, std::vector<torch::Tensor> given_latents,
                       std::vector<torch::Tensor> unused_noise, const Guidance& guidance,
                       std::vector<torch::Tensor> guidance_noise) {
  const double n = models.schedule().num_timesteps();
  if (guidance.scale != 0.0 && guidance_noise.size() != roles.given.size()) {
    throw std::invalid_argument("joint_noise_fn: guidance needs one noise tensor per given modality");
  }
  return [&models, roles, given_latents = std::move(given_latents), unused_noise = std::move(unused_noise),
          guidance, guidance_noise = std::move(guidance_noise), n](const torch::Tensor& x, double t) {
    const torch::Tensor cond = predict_generated(models, roles, x, t * n, given_latents, 0.0, unused_noise);
    if (!is_guided(guidance, !roles.given.empty())) return cond;
    const torch::Tensor uncond = predict_generated(models, roles, x, t * n, guidance_noise, n, unused_noise);
    return (1.0 + guidance.scale) * cond - guidance.scale * uncond;
  };
}

RunCost& RunCost::operator+=(const RunCost& o) {
  samples += o.samples;
  solver_steps += o.solver_steps;
  backbone_passes += o.backbone_passes;
  window_evaluations += o.window_evaluations;
  return *this;
}

bool RunCost::operator==(const RunCost& o) const {
  return samples == o.samples && solver_steps == o.solver_steps && backbone_passes == o.backbone_passes &&
         window_evaluations == o.window_evaluations;
}

RunCost tile_step_cost(int chunk, const Guidance& guidance, bool any_given) {
  const int passes = passes_per_step(guidance, any_given);
  return {0, 1, passes, static_cast<std::int64_t>(chunk) * passes};
}

RunCost tile_cost(int samples, int batch, int steps, const Guidance& guidance, bool any_given) {
  RunCost c;
  for (int first = 0; first < samples; first += batch) {
    const int chunk = std::min(batch, samples - first);
    c.samples += chunk;
    for (int s = 0; s < steps; ++s) c += tile_step_cost(chunk, guidance, any_given);
  }
  return c;
}

RunCost scene_step_cost(std::int64_t windows, int batch, const Guidance& guidance, bool any_given, bool fused) {
  const int passes = passes_per_step(guidance, any_given);
  // fused: one step sends every window, chunks_of(windows, batch) passes of each kind;
  // independent: the step of one chunk of at most `batch` windows
  const std::int64_t chunks = fused ? chunks_of(windows, batch) : 1;
  return {0, 1, chunks * passes, windows * passes};
}

RunCost scene_cost(int samples, std::int64_t windows, int batch, int steps, const Guidance& guidance, bool any_given,
                   bool fused) {
  RunCost c;
  c.samples = samples;
  for (int k = 0; k < samples; ++k) {
    if (fused) {
      for (int s = 0; s < steps; ++s) c += scene_step_cost(windows, batch, guidance, any_given, true);
      continue;
    }
    for (std::int64_t first = 0; first < windows; first += batch) {
      const std::int64_t chunk = std::min<std::int64_t>(batch, windows - first);
      for (int s = 0; s < steps; ++s) c += scene_step_cost(chunk, batch, guidance, any_given, false);
    }
  }
  return c;
}

std::string describe(const RunCost& c) {
  return std::to_string(c.samples) + " sample(s), " + std::to_string(c.solver_steps) + " solver step(s), " +
         std::to_string(c.backbone_passes) + " backbone pass(es), " + std::to_string(c.window_evaluations) +
         " window evaluation(s)";
}

NoiseFn Conditioning::noise_fn(Models& models, const Roles& roles, const Guidance& guidance) const {
  return joint_noise_fn(models, roles, given, unused, guidance, guidance_noise);
}

Conditioning device_conditioning(const std::vector<torch::Tensor>& given_latents, const Draws& draws,
                                 const torch::Device& device) {
  Conditioning c;
  for (const auto& z : given_latents) c.given.push_back(to_device(z, device));
  for (const auto& u : draws.unused_noise) c.unused.push_back(to_device(u, device));
  for (const auto& g : draws.guidance_noise) c.guidance_noise.push_back(to_device(g, device));
  return c;
}

}  // namespace copgen
