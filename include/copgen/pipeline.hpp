// translate and generate: given images (or latents) of some modalities, sample the
// others with the backbone and the solver, decode and write them.
//
//   copgen::TranslateOptions o;
//   o.inputs = {{copgen::Modality::S2L1C, "l1c.tif"}};
//   o.to = {copgen::Modality::S2L2A};
//   o.output = "l2a.tif";
//   auto models = copgen::Models::load(dir, o.model);
//   copgen::RunResult r = copgen::translate(o, models);
//
// One timestep per modality at every network call: generated modalities get the solver's
// latent at t * N, given ones their encoded latent at 0, unused ones Gaussian noise drawn
// once at N ("absent", as in training; the reference code feeds fresh noise at 0 instead).
//
// Randomness: one CPU generator seeded with `seed`, drawn per batch of B samples in this
// order: (1) the initial noise of the generated modalities, one [G, B, C, h, w] tensor
// (modality order); (2) for each given modality whose latent is sampled from the
// autoencoder posterior, in modality order, its eps [B, C, h, w]; (3) for each unused
// modality, in modality order, its noise [B, C, h, w]. Tensors are drawn on the CPU and
// moved to the device. With --guidance-scale, (4) for each given modality the noise that
// replaces it in the unconditional pass.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "copgen/conditioning.hpp"
#include "copgen/tuples.hpp"
#include "copgen/modality.hpp"
#include "copgen/models.hpp"
#include "copgen/sampler.hpp"
#include "copgen/scene.hpp"

namespace copgen {

// One given input: a 3-band 8-bit thumbnail in any GDAL format, or a .npy latent
// [C, h, w] (used as is) or autoencoder moments [2C, h, w].
struct GivenInput {
  Modality modality;
  std::string path;
};

// Options shared by translate and generate.
struct RunOptions {
  std::string output;                     // -o: file, directory, or pattern with {modality}
  std::string format = "GTiff";           // --format (GDAL driver of the outputs)
  SamplerOptions sampler;                 // --solver, --steps, --time-grid
  Guidance guidance;                      // --guidance-scale (0: none, as in the paper)
  std::optional<std::uint64_t> seed;      // --seed; unset: a random seed, logged and recorded
  int samples = 1;                        // --samples / -n: samples per input
  int batch_size = 1;                     // --batch-size: samples per network call
  CondLatent cond_latent = CondLatent::Sample;  // --cond-latent
  std::string save_latents_dir;           // --save-latents: also write latents as .npy
  bool overwrite = false;                 // --overwrite: replace existing outputs
};

struct TranslateOptions : RunOptions {
  std::vector<GivenInput> inputs;  // --from with -i / --input MOD=PATH
  std::vector<Modality> to;        // --to; empty: every modality not given
  SceneOptions scene;              // inputs other than 256 x 256 thumbnails (scene.hpp)
};

struct GenerateOptions : RunOptions {
  std::vector<Modality> to;  // --to; empty: all four
};

// Called after every network call with (calls done, calls in total) over the run.
using ProgressFn = std::function<void(int, int)>;

struct RunResult {
  std::vector<std::string> outputs;  // written image files, in order
  std::vector<std::string> latents;  // written .npy files
  std::uint64_t seed = 0;
  int network_calls = 0;
  double seconds = 0.0;
};

// Validates option combinations (naming both flags on a conflict); throws UsageError.
// The modalities a translate run generates: --to, or every modality not given.
std::vector<Modality> generated_of(const TranslateOptions& options);

void validate(const TranslateOptions& options);
void validate(const GenerateOptions& options);

// Runs a translation. 256 x 256 thumbnails and .npy latents are sampled as tiles; any other
// input (larger or smaller scenes, physical bands, product folders) goes through the scene
// path (translate_scene). Reads and checks every input and output path before any network
// call; throws InputError, OutputError, RuntimeError (NaN output) or Interrupted.
RunResult translate(const TranslateOptions& options, Models& models, const ProgressFn& progress = {});
// The scene path: inputs resolved and aligned onto one grid, rendered, windowed, sampled
// with fused or independent tiling, written window by window with the grid's
// georeferencing and the inputs' nodata.
RunResult translate_scene(const TranslateOptions& options, Models& models, const ProgressFn& progress = {});

// Unconditional generation; outputs carry no georeferencing.
RunResult generate(const GenerateOptions& options, Models& models, const ProgressFn& progress = {});

// A fresh random seed (from std::random_device), for when --seed is not given.
std::uint64_t random_seed();

}  // namespace copgen
