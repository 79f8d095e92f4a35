// The scene path of translate (any size, physical bands, inputs aligned onto one grid,
// fused tiling) as named phases, in the order translate_scene() runs them:
//
//   prepare_scene    resolve the inputs, choose the grid, plan and check the outputs, lay
//                    out the latent canvas: everything that can be refused is, before any work
//   render_inputs    render each input onto the grid (a scratch GeoTIFF per input)
//   encode_inputs    encode each rendering window by window into posterior moments on the
//                    latent canvas
//   sample_canvas    one sample: draw the noise, run the solver over the whole canvas,
//                    fused (every call sees every window, MultiDiffusion) or window by window
//   write_sample     decode the canvas window by window, write each window's core, mask nodata
//   write_summaries  per-pixel mean and standard deviation over the samples
//
//   ScenePlan plan = prepare_scene(o, models);
//   WorkDir work(dir);
//   auto rendered = render_inputs(plan, o.scene, work.path());
//   auto moments = encode_inputs(models, plan, rendered, o.sampling.batch_size);
//   at::Generator gen = at::detail::createCPUGenerator(plan.seed);
//   torch::Tensor x0 = sample_canvas(models, plan, moments, o, gen, 0, [](const RunCost&) {});
//   write_sample(models, plan, o, rendered, x0, 0);
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include "copgen/conditioning.hpp"
#include "copgen/models.hpp"
#include "copgen/outputs.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/raster_scene.hpp"
#include "copgen/scene.hpp"
#include "copgen/tiling.hpp"

namespace copgen {

// The latent canvas of a scene: the scene padded to a multiple of the autoencoder's
// downsampling (at least one image-sized window), downsampled, laid out in windows of the
// latent size. COP-GEN-Beta: 8 pixels per latent pixel, windows of 256 pixels, 32 latent.
struct Canvas {
  int width = 0, height = 0;     // the scene, pixels
  int factor = 8;                // image pixels per latent pixel (Models::downsampling)
  int window = 256;              // window side in pixels (Models::image_size)
  int64_t lat_h = 0, lat_w = 0;  // the latent canvas
  Layout layout;                 // latent windows
  std::vector<Core> cores;       // the part of each window that is written
};
Canvas make_canvas(const Grid& grid, int overlap_px, const Models& models);

// What the phases of one scene run share; fixed by prepare_scene before any work.
struct ScenePlan {
  std::vector<ModalityInput> inputs;            // as given
  std::vector<std::size_t> order;               // indices of inputs in modality order (roles.given's)
  Grid grid;
  Roles roles;
  Canvas canvas;
  OutputPlan outputs;                           // images[sample][generated modality]
  std::map<std::string, std::string> metadata;  // what every output carries
  std::uint64_t seed = 0;                       // --seed, or a random one (logged)
};

// On options translate() has validated: resolves the inputs, chooses the grid (scene_grid),
// checks that the canvas fits in memory, plans and checks the outputs (plan_outputs; makes
// their folders). Throws UsageError, InputError or OutputError before anything is read
// beyond the inputs' headers.
ScenePlan prepare_scene(const TranslateOptions& o, const Models& models);

// What a scene run costs, known before any work.
struct SceneCost {
  int windows = 0;          // latent windows of the canvas
  RunCost run;              // samples, solver steps, backbone passes, window evaluations (conditioning.hpp)
  double canvas_bytes = 0;  // the latent canvas buffers (what the memory check bounds)
};
SceneCost scene_cost(const ScenePlan& plan, const TranslateOptions& o, const Models& models);

// Each input rendered onto the grid as the model sees it, in `work_dir`; in the order of
// plan.inputs. Throws InputError for an input that is nodata everywhere (unless
// --fill-nodata).
std::vector<RasterSource> render_inputs(const ScenePlan& plan, const SceneOptions& scene, const std::string& work_dir);

// Posterior moments [2C, lat_h, lat_w] of each rendering, in modality order (plan.order),
// encoded `batch` windows at a time.
std::vector<torch::Tensor> encode_inputs(Models& models, const ScenePlan& plan,
                                         const std::vector<RasterSource>& rendered, int batch);

// Called after every solver step with what the step cost (scene_step_cost: one solver
// step, its backbone passes and window evaluations).
using CanvasCallback = std::function<void(const RunCost& step)>;

// One sample of the generated modalities' latents [G, C, lat_h, lat_w], drawn from `gen`:
// fused or independent tiling as o.scene.tiling says. Throws RuntimeError when the network
// output is not finite.
torch::Tensor sample_canvas(Models& models, const ScenePlan& plan, const std::vector<torch::Tensor>& moments,
                            const TranslateOptions& o, at::Generator& gen, int k, const CanvasCallback& on_call);

// Decodes sample k's canvas window by window and writes plan.outputs.images[k] (pixels
// nodata in any rendering are 0 and masked, unless --fill-nodata). Returns the files.
std::vector<std::string> write_sample(Models& models, const ScenePlan& plan, const TranslateOptions& o,
                                      const std::vector<RasterSource>& rendered, const torch::Tensor& x0, int k);

// With several samples and --summary: "<output>_mean.tif" and/or "<output>_std.tif" per
// generated modality, Float32, read back window by window. Returns the files.
std::vector<std::string> write_summaries(const ScenePlan& plan, const TranslateOptions& o);

}  // namespace copgen
