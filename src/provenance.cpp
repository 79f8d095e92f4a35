#include "copgen/provenance.hpp"

#include "copgen/sampler.hpp"
#include "copgen/version.hpp"

namespace copgen {

std::map<std::string, std::string> run_metadata(const SamplingOptions& s, int samples, const Models& models,
                                                std::uint64_t seed, const std::string& mode,
                                                const std::vector<Modality>& given_mods, const Roles& roles) {
  const std::vector<Modality>& generated = roles.generated;
  std::map<std::string, std::string> meta = {
      {"COPGEN_VERSION", kVersion},
      {"COPGEN_MODELS_SHA256", models.manifest().sha256},
      {"COPGEN_MODELS_SOURCE", models.manifest().backbone.source},
      {"COPGEN_MODE", mode},
      {"COPGEN_SEED", std::to_string(seed)},
      {"COPGEN_STEPS", std::to_string(s.sampler.steps)},
      {"COPGEN_SOLVER", solver_name(s.sampler.solver)},
      {"COPGEN_TIME_GRID", time_grid_name(s.sampler.grid)},
      {"COPGEN_GUIDANCE_SCALE", std::to_string(s.guidance.scale)},
      {"COPGEN_BATCH_SIZE", std::to_string(s.batch_size)},
      {"COPGEN_GIVEN", given_mods.empty() ? "none" : join_modalities(given_mods)},
      {"COPGEN_GENERATED", join_modalities(generated)},
      {"COPGEN_UNUSED", roles.unused.empty() ? "none" : join_modalities(roles.unused) + " (noise at t=N)"},
      {"COPGEN_COND_LATENT", cond_latent_name(s.cond_latent)},
      {"COPGEN_SAMPLES", std::to_string(samples)},
  };
  const auto settings = models.settings_metadata();  // precisions and TF32
  meta.insert(settings.begin(), settings.end());
  return meta;
}

}  // namespace copgen
