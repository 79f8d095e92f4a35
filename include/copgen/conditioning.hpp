// How COP-GEN-Beta is conditioned: one timestep per modality at every network call, and
// the random draws a batch needs, in the order copgen documents. Everything that samples
// (translate, generate, scenes, batches, eval) builds on these pieces.
//
//   Roles roles = Roles::make({Modality::S2L1C}, {Modality::S2L2A});
//   Draws d = draw_noise(gen, roles, {true}, b, shape);        // CPU, fixed order
//   auto given = latent_from_moments(moments, d.posterior_eps[0], sf);
//   NoiseFn fn = joint_noise_fn(models, roles, {given}, d.unused_noise, guidance);
//   auto x0 = sample(fn, models.schedule(), d.x_T, sampler_options);  // [G, B, C, h, w]
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include "copgen/modality.hpp"
#include "copgen/sampler.hpp"

namespace copgen {

class Models;

// Which modalities are given (conditioning), generated, and unused, each in modality order.
struct Roles {
  std::vector<Modality> given;
  std::vector<Modality> generated;
  std::vector<Modality> unused;

  // Throws UsageError if a modality is both given and generated, or nothing is generated.
  static Roles make(std::vector<Modality> given, std::vector<Modality> generated);
};

// Latent shape [C, h, w].
using LatentShape = std::array<std::int64_t, 3>;

// The random tensors one batch of b samples needs, drawn on the CPU from `gen` in this
// order: (1) x_T [G, b, C, h, w] for the generated modalities; (2) for each given modality
// i with needs_eps[i], its posterior eps [b, C, h, w]; (3) for each unused modality its
// noise [b, C, h, w]; (4) only when `guidance` is set, for each given modality, the
// noise [b, C, h, w] that replaces it in the unconditional pass of guidance.
struct Draws {
  torch::Tensor x_T;
  std::vector<torch::Tensor> posterior_eps;  // one per given modality; undefined where not drawn
  std::vector<torch::Tensor> unused_noise;   // one per unused modality
  std::vector<torch::Tensor> guidance_noise;  // one per given modality, or empty
};
Draws draw_noise(at::Generator& gen, const Roles& roles, const std::vector<bool>& needs_eps,
                 std::int64_t b, const LatentShape& shape, bool guidance = false);

// z = s * (mean + exp(0.5 * clamp(logvar, -30, 20)) * eps), or z = s * mean when eps is
// undefined. moments: [b, 2C, h, w] (or [2C, h, w], broadcast to eps's batch).
torch::Tensor latent_from_moments(const torch::Tensor& moments, const torch::Tensor& eps, double scale);

// Classifier-free guidance in the UniDiffuser form:
// eps = (1 + s) eps(x | given) - s eps(x | given replaced by noise at t = N).
struct Guidance {
  double scale = 0.0;  // --guidance-scale; 0 is exactly no guidance (one call per step)
};
// The one guidance rule: a run is guided when the scale is non-zero and some modality is
// given (with nothing given there is no unconditional pass to mix with); a guided solver
// step takes two backbone passes (conditional and unconditional), any other one.
inline bool is_guided(const Guidance& g, bool any_given) { return g.scale != 0.0 && any_given; }
inline int passes_per_step(const Guidance& g, bool any_given) { return is_guided(g, any_given) ? 2 : 1; }
// The chunks of at most `batch` that `n` samples (or windows) are processed in.
inline std::int64_t chunks_of(std::int64_t n, std::int64_t batch) { return (n + batch - 1) / batch; }

// What a sampling run costs, in the one vocabulary every command uses: the plan
// (--dry-run), the progress line (solver steps), the result and the bench. A window is
// one image-sized input of the backbone: a tile, or a window of a scene's latent canvas.
struct RunCost {
  std::int64_t samples = 0;             // samples drawn
  std::int64_t solver_steps = 0;        // solver steps over the run: what the progress line counts
  std::int64_t backbone_passes = 0;     // backbone forward calls (a batch of windows each)
  std::int64_t window_evaluations = 0;  // windows through the backbone, summed over the passes

  RunCost& operator+=(const RunCost& o);
  bool operator==(const RunCost& o) const;
  bool operator!=(const RunCost& o) const { return !(*this == o); }
};
// Tiles: `samples` samples in chunks of `batch`, each chunk one solver run of `steps`
// steps with passes_per_step(guidance, any_given) backbone passes per step.
RunCost tile_cost(int samples, int batch, int steps, const Guidance& guidance, bool any_given);
// One solver step of a chunk of `chunk` tiles (samples: 0; tile_cost counts them).
RunCost tile_step_cost(int chunk, const Guidance& guidance, bool any_given);
// A scene: each of `samples` samples a solver run over `windows` windows. Fused tiling: every
// step sees every window, in chunks of `batch` per pass; independent tiling: each chunk of
// windows is its own solver run. Both send every window through every step.
RunCost scene_cost(int samples, std::int64_t windows, int batch, int steps, const Guidance& guidance, bool any_given,
                   bool fused);
// One solver step over `windows` windows (fused: all of them, in chunks of `batch`;
// independent: one chunk), samples 0.
RunCost scene_step_cost(std::int64_t windows, int batch, const Guidance& guidance, bool any_given, bool fused);
// "2 sample(s), 20 solver step(s), 40 backbone pass(es), 40 window evaluation(s)".
std::string describe(const RunCost& cost);

// Guidance scales beyond this are refused as absurd (the paper uses 0; a few units is strong).
inline constexpr double kMaxGuidanceScale = 1000.0;
// UsageError naming --guidance-scale unless the scale is finite and within kMaxGuidanceScale.
void validate(const Guidance& g);

// What the backbone is conditioned on besides x, on the models' device, in the order of
// roles: each tensor [B, C, h, w] (a scene's: [1, C, H, W] canvases, cut into windows by
// the scene path).
struct Conditioning {
  std::vector<torch::Tensor> given;           // the given modalities' latents (roles.given)
  std::vector<torch::Tensor> unused;          // the unused modalities' noise (roles.unused)
  std::vector<torch::Tensor> guidance_noise;  // per given modality, only when guided

  // joint_noise_fn of this conditioning.
  NoiseFn noise_fn(Models& models, const Roles& roles, const Guidance& guidance) const;
};
// The one place the conditioning reaches the device, for tiles and scenes alike: the given
// latents (host tensors, in roles.given order) and the unused and guidance noise of
// `draws`, each through cuda.hpp's reused pinned staging (to_device).
Conditioning device_conditioning(const std::vector<torch::Tensor>& given_latents, const Draws& draws,
                                 const torch::Device& device);

// The noise-prediction function of the generated modalities for the solver: x is
// [G, B, C, h, w]; generated modalities get t * N, given ones their latent at 0, unused
// ones their noise at N. given_latents / unused_noise / guidance_noise are [B, C, h, w]
// tensors (on the models' device) in the order of roles.given / roles.unused.
NoiseFn joint_noise_fn(Models& models, const Roles& roles, std::vector<torch::Tensor> given_latents,
                       std::vector<torch::Tensor> unused_noise, const Guidance& guidance = {},
                       std::vector<torch::Tensor> guidance_noise = {});

// One backbone call for all four modalities assembled from the parts above; returns the
// generated modalities' predicted noise [G, B, C, h, w]. `given_t` is the label the given
// modalities get (0, or N for the unconditional pass of guidance).
torch::Tensor predict_generated(Models& models, const Roles& roles, const torch::Tensor& x, double t_label,
                                const std::vector<torch::Tensor>& given_latents, double given_label,
                                const std::vector<torch::Tensor>& unused_noise);

}  // namespace copgen
