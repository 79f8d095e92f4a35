// translate and generate: given images (or latents) of some modalities, sample the
// others with the backbone and the solver, decode and write them.
//
//   copgen::TranslateOptions o;
//   o.inputs = {{copgen::Modality::S2L1C, "l1c.tif"}};
//   o.to = {copgen::Modality::S2L2A};
//   o.output.path = "l2a.tif";
//   auto models = copgen::Models::load(dir, copgen::ModelOptions{});
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
#include "copgen/inputs.hpp"
#include "copgen/tuples.hpp"
#include "copgen/modality.hpp"
#include "copgen/models.hpp"
#include "copgen/outputs.hpp"
#include "copgen/sampler.hpp"
#include "copgen/scene.hpp"

namespace copgen {

struct TranslateOptions {
  std::vector<GivenInput> inputs;  // --from with -i / --input MOD=PATH (inputs.hpp)
  std::vector<Modality> to;        // --to; empty: every modality not given
  SamplingOptions sampling;        // solver, steps, guidance, seed, batch size (tuples.hpp)
  OutputOptions output;            // -o, --format, --save-latents, --overwrite (outputs.hpp)
  int samples = 1;                 // --samples / -n: samples per input
  SceneOptions scene;              // inputs other than 256 x 256 thumbnails (scene.hpp)
};

struct GenerateOptions {
  std::vector<Modality> to;  // --to; empty: all four
  SamplingOptions sampling;
  OutputOptions output;
  int samples = 1;           // --samples / -n
};

// Called after every solver step with (steps done, steps in total) over the run: the
// solver_steps of the run's RunCost (conditioning.hpp).
using ProgressFn = std::function<void(std::int64_t, std::int64_t)>;

struct RunResult {
  std::vector<std::string> outputs;  // written image files, in order
  std::vector<std::string> latents;  // written .npy files
  std::uint64_t seed = 0;
  RunCost cost;  // as counted while running (backbone passes by the models); equals the plan's
  double seconds = 0.0;
};

// The modalities a translate run generates: --to, or every modality not given
// (generated_modalities).
std::vector<Modality> generated_of(const TranslateOptions& options);

// Validates option combinations (naming both flags on a conflict) without touching a
// file; throws UsageError. translate() and generate() call them first; the CLI calls them
// before loading the models.
void validate(const TranslateOptions& options);
void validate(const GenerateOptions& options);

// Tile or scene: the inputs probed once (probe_tile_run, inputs.hpp), headers only. Refuses
// what only tiles take (--save-latents, .npy inputs) on a scene: UsageError or
// InputError. translate() asks it; the CLI asks it before loading the models (with the
// manifest's image size), so such errors come first.
struct TranslateRoute {
  bool scene = false;
  std::vector<GivenProbe> probes;  // tiles: one per input, in the order of options.inputs
};
TranslateRoute route_translate(const TranslateOptions& options, int image_size);

// Runs a translation. 256 x 256 thumbnails and .npy latents are sampled as tiles; any other
// input (larger or smaller scenes, physical bands, product folders with their bands) goes
// through the scene path (translate_scene), as route_translate says. Reads and checks every
// input and output path before any network call; throws InputError, OutputError,
// RuntimeError (NaN output) or Interrupted.
RunResult translate(const TranslateOptions& options, Models& models, const ProgressFn& progress = {});
// The scene path of translate(), on options it has validated (call validate(options)
// first): inputs resolved and aligned onto one grid, rendered, windowed, sampled with fused
// or independent tiling, written window by window with the grid's georeferencing and the
// inputs' nodata.
RunResult translate_scene(const TranslateOptions& options, Models& models, const ProgressFn& progress = {});

// Writes the --stac-out item the plan holds (none: nothing) describing r's outputs, with
// the inputs as its sources; translate's tile and scene paths end with it.
void write_run_stac_item(const TranslateOptions& options, const OutputPlan& plan, const RunResult& r);

// What translate() would do, worked out as it works it out (inputs probed, grid chosen,
// outputs checked) but without reading pixels, sampling or writing anything: --dry-run.
struct TranslatePlan {
  bool scene = false;                   // the scene path; else tiles
  int width = 0, height = 0;            // of the outputs, pixels
  std::string grid;                     // the scene's grid in words (CRS, pixel size, origin); "" for tiles
  int windows = 1;                      // latent windows (tiles: 1)
  RunCost cost;                         // samples, solver steps, backbone passes, window evaluations
  double memory_bytes = 0;              // the latent canvas of a scene (0 for tiles)
  std::vector<PlannedFile> outputs;     // every file the run would write, as its OutputGate planned them
};
// Throws what translate() throws before its first network call.
TranslatePlan plan_translate(const TranslateOptions& options, Models& models);
// The plan as lines of text, for --dry-run.
std::string describe(const TranslatePlan& plan);

// Unconditional generation; outputs carry no georeferencing.
RunResult generate(const GenerateOptions& options, Models& models, const ProgressFn& progress = {});

// A fresh random seed (from std::random_device), for when --seed is not given.
std::uint64_t random_seed();

}  // namespace copgen
