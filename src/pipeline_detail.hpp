// Shared between the tile path (pipeline.cpp), the scene path (scene_pipeline.cpp) and the
// batch runner (batch.cpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "copgen/pipeline.hpp"

namespace copgen::detail {

bool has_suffix_ci(const std::string& s, const std::string& suffix);
std::vector<Modality> generated_of(const TranslateOptions& o);
std::vector<std::string> band_descriptions(Modality m);
std::string insert_sample_suffix(const std::string& path, int k, int n);

struct OutputPlan {
  std::vector<std::vector<std::string>> images;   // [sample][generated modality]
  std::vector<std::vector<std::string>> latents;  // [sample][modality index], "" when not saved
};
// Resolves and checks every output path (existence without --overwrite, collisions,
// writable directories) before any work.
OutputPlan plan_outputs(const RunOptions& o, const std::vector<Modality>& generated,
                        const std::vector<Modality>& saved_latent_modalities);

// Provenance metadata every output carries.
std::map<std::string, std::string> run_metadata(const RunOptions& o, const Models& models, std::uint64_t seed,
                                                const std::string& mode, const std::vector<Modality>& given_mods,
                                                const Roles& roles);

}  // namespace copgen::detail
