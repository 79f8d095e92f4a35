// Shared between the tile path (pipeline.cpp), the scene path (scene_pipeline.cpp) and the
// batch runner (batch.cpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "copgen/outputs.hpp"
#include "copgen/pipeline.hpp"

namespace copgen::detail {

bool has_suffix_ci(const std::string& s, const std::string& suffix);
std::string shape_str(const torch::Tensor& t);
// A number as a person writes it ("10", "0.5", "1e+30", "nan").
std::string number_str(double v);

// Autoencoder latents and moments (mean, log-variance) are of order 1 to 10; a .npy with
// values beyond this is not one (and would only overflow the network).
inline constexpr double kMaxLatentMagnitude = 1e4;
// A given .npy latent [c, h, h] or moments [2c, h, h], finite and of a plausible size;
// InputError naming `what` and the path otherwise.
torch::Tensor read_given_npy(const std::string& path, const std::string& what, int64_t c, int64_t h);
std::vector<Modality> generated_of(const TranslateOptions& o);
std::vector<std::string> band_descriptions(Modality m);
std::string insert_sample_suffix(const std::string& path, int k, int n);

struct OutputPlan {
  std::vector<std::vector<std::string>> images;   // [sample][generated modality]
  std::vector<std::vector<std::string>> latents;  // [sample][modality index], "" when not saved
  CreatedDirs dirs;  // folders made for the outputs; those left empty are removed with the plan
};
// Resolves and checks every output path before any work: existence without --overwrite,
// collisions, a .tif name, writable directories, never a device, FIFO or folder, never
// the same file as one of `inputs` (the paths as given: files, band lists, product
// folders). Then makes the output folders.
OutputPlan plan_outputs(const RunOptions& o, const std::vector<Modality>& generated,
                        const std::vector<Modality>& saved_latent_modalities, const std::vector<std::string>& inputs);


// Provenance metadata every output carries.
std::map<std::string, std::string> run_metadata(const RunOptions& o, const Models& models, std::uint64_t seed,
                                                const std::string& mode, const std::vector<Modality>& given_mods,
                                                const Roles& roles);

}  // namespace copgen::detail
