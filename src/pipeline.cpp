#include "copgen/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "copgen/cancel.hpp"
#include "copgen/conditioning.hpp"
#include "copgen/tuples.hpp"
#include "copgen/error.hpp"
#include "copgen/inputs.hpp"
#include "copgen/npy.hpp"
#include "copgen/outputs.hpp"
#include "copgen/pictures.hpp"
#include "copgen/pixels.hpp"
#include "copgen/previews.hpp"
#include "copgen/provenance.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/scene_pipeline.hpp"
#include "copgen/stac.hpp"
#include "copgen/version.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;

std::uint64_t random_seed() {
  std::random_device rd;
  const std::uint64_t hi = rd(), lo = rd();
  return ((hi << 32) | lo) & ((std::uint64_t{1} << 53) - 1);  // exact in JSON and Python floats
}

namespace {

// What translate and generate check alike: sampling, outputs, samples and --to.
void validate_run(const SamplingOptions& sampling, const OutputOptions& output, int samples,
                  const std::vector<Modality>& to) {
  validate(output);
  if (samples < 1) throw UsageError("--samples: must be at least 1, got " + std::to_string(samples));
  validate(sampling);
  std::set<Modality> seen;
  for (Modality m : to) {
    if (!seen.insert(m).second) throw UsageError("--to: modality " + modality_name(m) + " is given more than once");
  }
}

// A given modality of a tile run as read from disk (inputs.hpp): a latent used as is,
// posterior moments, or pixels (encoded to moments once, before sampling).
struct GivenSource {
  Modality modality;
  std::string path;
  GivenFile data;
};

// Encodes the images among `given` to posterior moments, one batch for all of them.
void encode_given(std::vector<GivenSource>& given, Models& models) {
  std::vector<torch::Tensor> batch;
  for (const GivenSource& g : given) {
    if (g.data.pixels.defined()) batch.push_back(pixels_to_model(g.data.pixels));
  }
  if (batch.empty()) return;
  const torch::Tensor moments = models.encode_moments(torch::stack(batch, 0)).to(torch::kCPU);
  int64_t i = 0;
  for (GivenSource& g : given) {
    if (g.data.pixels.defined()) g.data.moments = moments[i++];
  }
}

// Where the outputs of tiles are nodata: where any given input is (GDAL's mask of its band
// 1), unless --fill-nodata; the same rule as scenes (docs/scenes.md). Empty: all valid.
std::vector<std::uint8_t> tile_nodata_mask(const std::vector<GivenSource>& given, bool fill_nodata) {
  std::vector<std::uint8_t> mask;
  for (const GivenSource& g : given) {
    if (g.data.valid.empty()) continue;
    const auto invalid = std::count(g.data.valid.begin(), g.data.valid.end(), std::uint8_t{0});
    spdlog::info("{} input '{}': {} of {} pixels are nodata; they are {} in the outputs", modality_name(g.modality),
                 g.path, invalid, g.data.valid.size(), fill_nodata ? "generated (--fill-nodata)" : "nodata");
    if (fill_nodata) continue;
    if (mask.empty()) mask.assign(g.data.valid.size(), 255);
    for (size_t i = 0; i < mask.size(); ++i) {
      if (g.data.valid[i] == 0) mask[i] = 0;
    }
  }
  return mask;
}

// Writes sample k's generated images (masked where the inputs are nodata) and the latents
// the plan saves, adding them to result.
void write_tile_sample(const OutputOptions& o, const TupleOutputs& out, int k, const std::vector<Modality>& generated,
                       const std::optional<GeoInfo>& geo, const std::vector<std::uint8_t>& mask,
                       const OutputPlan& plan, const std::map<std::string, std::string>& meta, RunResult& result,
                       std::vector<ImageU8>* pictures) {
  for (size_t g = 0; g < generated.size(); ++g) {
    throw_if_stop_requested();
    const Modality m = generated[g];
    WriteOptions w;
    w.format = o.format;
    w.overwrite = o.overwrite;
    w.metadata = meta;
    w.metadata["COPGEN_MODALITY"] = modality_name(m);
    w.metadata["COPGEN_SAMPLE"] = std::to_string(k);
    w.band_descriptions = band_descriptions(m);
    w.mask = mask;
    GeoInfo out_geo = geo.value_or(GeoInfo{});
    out_geo.nodata.reset();  // generated pixels take every value: nodata is the mask's
    ImageU8 image = tensor_to_image(out.images.at(m), out_geo);
    for (size_t i = 0; i < mask.size(); ++i) {
      if (mask[i] != 0) continue;
      for (int b = 0; b < image.bands; ++b) image.pixels[static_cast<size_t>(b) * mask.size() + i] = 0;
    }
    const std::string& path = plan.images[static_cast<size_t>(k)][g];
    write_image_u8(path, image, w);
    if (pictures != nullptr) {
      pictures->push_back(image);
      pictures->back().valid = mask;
    }
    result.outputs.push_back(path);
    spdlog::info("wrote {} ({})", path, modality_name(m));
  }
  for (const auto& [m, latent] : out.latents) {
    const std::string& lp = plan.latents[static_cast<size_t>(k)][static_cast<size_t>(modality_index(m))];
    if (!lp.empty()) {
      write_npy(lp, latent);
      result.latents.push_back(lp);
    }
  }
}

// The --preview of a tile run (pictures.hpp's layout): per sample, the given images (a .npy
// input has no picture: all nodata), then the generated ones, at 256 x 256 (downsampled
// only past kPreviewMaxWidth, which four panels never reach).
void write_tile_preview(const std::string& path, const std::vector<GivenSource>& given,
                        const std::vector<Modality>& generated, const std::vector<std::vector<ImageU8>>& pictures) {
  const int panels = static_cast<int>(given.size() + generated.size());
  std::vector<std::vector<Panel>> rows;
  for (const std::vector<ImageU8>& sample : pictures) {
    std::vector<Panel> row;
    for (const GivenSource& g : given) {
      ImageU8 image;
      if (g.data.pixels.defined()) {
        image = tensor_to_image(g.data.pixels, GeoInfo{});
        image.valid = g.data.valid;
      }
      row.push_back({modality_name(g.modality) + " given", std::move(image)});
    }
    for (size_t i = 0; i < generated.size(); ++i) {
      row.push_back({modality_name(generated[i]) + " generated", sample[i]});
    }
    const int width = sample.empty() ? 0 : sample[0].width;
    const int f = preview_factor(width, panels);
    for (Panel& p : row) {
      if (p.image.width > 0) p.image = downsample(p.image, f);
    }
    rows.push_back(std::move(row));
  }
  write_png(path, compose_preview(rows));
  spdlog::info("wrote {} (preview)", path);
}

// What a tile run of `samples` samples costs (conditioning.hpp's rule).
RunCost tile_run_cost(const SamplingOptions& s, int samples, bool any_given) {
  return tile_cost(samples, s.batch_size, s.sampler.steps, s.guidance, any_given);
}

// Samples `samples` outputs of the tuple `given` in batches of the sampling options' size
// and writes them as `plan` says.
RunResult run(const SamplingOptions& s, const OutputOptions& out, int samples, std::vector<GivenSource> given,
              const std::vector<Modality>& generated, const std::optional<GeoInfo>& geo,
              const std::vector<std::uint8_t>& mask, const OutputPlan& plan, Models& models,
              const ProgressFn& progress, const std::string& mode) {
  const auto started = std::chrono::steady_clock::now();
  RunResult result;
  result.seed = s.seed.value_or(random_seed());
  if (!s.seed) spdlog::info("seed: {} (random; pass --seed {} to reproduce)", result.seed, result.seed);

  std::sort(given.begin(), given.end(), [](const GivenSource& a, const GivenSource& b) {
    return modality_index(a.modality) < modality_index(b.modality);
  });
  std::vector<Modality> given_mods;
  for (const auto& g : given) given_mods.push_back(g.modality);

  const RunCost planned = tile_run_cost(s, samples, !given.empty());
  const std::int64_t passes_before = models.backbone_calls();
  const Roles roles = Roles::make(given_mods, generated);

  // the tuple every sample of this run shares
  TupleInputs tuple;
  for (const GivenSource& g : given) {
    tuple.label += (tuple.label.empty() ? "" : ", ") + g.path;
    tuple.given[g.modality] = g.data.pixels.defined() ? GivenData{{}, g.data.moments, {}}
                                                       : GivenData{{}, g.data.moments, g.data.latent};
  }
  if (tuple.label.empty()) tuple.label = "unconditional samples";
  at::Generator gen = at::detail::createCPUGenerator(result.seed);

  const std::map<std::string, std::string> meta =
      run_metadata(s, samples, models, result.seed, mode, given_mods, roles);

  std::vector<std::vector<ImageU8>> pictures;  // [sample][generated], for --preview
  for (int first = 0; first < samples; first += s.batch_size) {
    throw_if_stop_requested();
    const int b = std::min(s.batch_size, samples - first);
    const RunCost step = tile_step_cost(b, s.guidance, !given.empty());
    const std::vector<TupleOutputs> outs = sample_tuples(
        models, roles, std::vector<TupleInputs>(static_cast<size_t>(b), tuple), s, gen, [&](int, int) {
          result.cost += step;
          if (progress) progress(result.cost.solver_steps, planned.solver_steps);
          throw_if_stop_requested();
        });
    result.cost.samples += b;

    for (int64_t j = 0; j < b; ++j) {
      if (!plan.preview.empty()) pictures.emplace_back();
      write_tile_sample(out, outs[static_cast<size_t>(j)], first + static_cast<int>(j), generated, geo, mask, plan,
                        meta, result, plan.preview.empty() ? nullptr : &pictures.back());
    }
  }
  if (!plan.preview.empty()) write_tile_preview(plan.preview, given, generated, pictures);
  result.cost.backbone_passes = models.backbone_calls() - passes_before;  // counted by the models themselves
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace

std::vector<Modality> generated_of(const TranslateOptions& o) {
  std::vector<Modality> given;
  for (const GivenInput& g : o.inputs) given.push_back(g.modality);
  return generated_modalities(given, o.to);
}

void validate(const TranslateOptions& o) {
  if (o.inputs.empty()) throw UsageError("--from: at least one given modality with an input is required");
  std::set<Modality> given;
  for (const GivenInput& g : o.inputs) {
    given.insert(g.modality);  // several inputs of one modality: a mosaic (the scene path's; route_translate)
    if (g.path.empty()) throw UsageError("--input: empty path for " + modality_name(g.modality));
  }
  for (Modality m : o.to) {
    if (given.count(m)) {
      throw UsageError("--to " + modality_name(m) + " is also given with --from");
    }
  }
  const std::vector<Modality> gen = generated_of(o);
  if (gen.empty()) throw UsageError("--to: nothing to generate (every modality is given with --from)");
  validate_run(o.sampling, o.output, o.samples, o.to);
  validate(o.scene, gen, o.samples);
  check_asset_overrides(o.scene.assets, std::vector<Modality>(given.begin(), given.end()));
  if (!o.output.save_latents_dir.empty() && needs_scene_path(o.scene)) {
    throw UsageError("--save-latents is offered for 256 x 256 tiles only, not with --output-kind physical, "
                     "--summary, --projwin or --srcwin (the scene path)");
  }
}

void validate(const GenerateOptions& o) {
  validate_run(o.sampling, o.output, o.samples, o.to);
  if (o.sampling.cond_latent != CondLatent::Sample) {
    // harmless, but say so: generate has no given modality to encode
    spdlog::debug("--cond-latent has no effect on generate");
  }
}

TranslateRoute route_translate(const TranslateOptions& o, int image_size) {
  TranslateRoute r;
  r.probes = probe_tile_run(o.inputs, o.scene, image_size);
  r.scene = r.probes.empty();
  if (!r.scene) {
    std::map<Modality, int> count;
    for (const GivenInput& g : o.inputs) {
      if (++count[g.modality] == 2) {
        throw UsageError("--input: " + modality_name(g.modality) + " is given more than once, a mosaic, and "
                         "mosaics are made on the scene path only, where these " + std::to_string(image_size) +
                         "-pixel tiles are not taken; give a region (--projwin or --srcwin) for the scene path, "
                         "or one input per modality");
      }
    }
    return r;
  }
  for (const GivenInput& g : o.inputs) {
    if (detail::ends_with_ci(g.path, ".npy")) {
      throw InputError(modality_name(g.modality) + " input '" + g.path +
                       "': .npy latents are accepted for single tiles of the model's size only, not with scene "
                       "inputs");
    }
  }
  if (!o.output.save_latents_dir.empty()) {
    throw UsageError("--save-latents is offered for 256 x 256 tiles only, not for scenes");
  }
  return r;
}

namespace {

// The outputs of a tile run, planned and checked: the generated images and, with
// --save-latents, the latents of the given and generated modalities; never an input.
OutputPlan plan_tile_outputs(const TranslateOptions& o, const std::vector<Modality>& generated, const Models& models) {
  std::vector<Modality> latent_mods = generated;
  std::vector<std::string> input_paths;
  for (const GivenInput& g : o.inputs) {
    latent_mods.push_back(g.modality);
    input_paths.push_back(g.path);
  }
  input_paths.push_back(models.directory());  // the models are read too
  return plan_outputs(o.output, o.samples, generated, sorted_modalities(latent_mods), input_paths);
}

// The tile path of translate(): inputs probed as tiles (or .npy latents).
RunResult translate_tiles(const TranslateOptions& o, const std::vector<GivenProbe>& probes, Models& models,
                          const ProgressFn& progress) {
  const std::vector<Modality> generated = generated_of(o);
  // every input is read and checked before any output path is touched
  std::vector<GivenSource> given;
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    const GivenInput& in = o.inputs[i];
    given.push_back({in.modality, in.path,
                     read_given(probes[i], modality_name(in.modality) + " input", models.latent_channels(),
                                models.latent_size())});
  }
  const GeoInfo geo = given[0].data.geo;  // outputs take the first input's georeferencing
  OutputPlan plan = plan_tile_outputs(o, generated, models);
  const std::vector<std::uint8_t> mask = tile_nodata_mask(given, o.scene.fill_nodata);
  encode_given(given, models);
  plan.gate.make_dirs();
  spdlog::info("translate {} -> {} ({} steps, {}, {} sample(s))",
               join_modalities(sorted_modalities([&] {
                 std::vector<Modality> v;
                 for (const auto& g : o.inputs) v.push_back(g.modality);
                 return v;
               }())),
               join_modalities(generated), o.sampling.sampler.steps, solver_name(o.sampling.sampler.solver), o.samples);
  RunResult r = run(o.sampling, o.output, o.samples, std::move(given), generated, geo, mask, plan, models, progress,
                    "translate");
  write_run_stac_item(o, plan, r);
  return r;
}

}  // namespace

void write_run_stac_item(const TranslateOptions& o, const OutputPlan& plan, const RunResult& r) {
  if (plan.stac_item.empty()) return;
  std::vector<std::string> sources;
  for (const GivenInput& g : o.inputs) sources.push_back(g.path);
  write_stac_item(plan.stac_item, fs::path(plan.stac_item).stem().string(), r.outputs, sources);
}

RunResult translate(const TranslateOptions& o, Models& models, const ProgressFn& progress) {
  validate(o);
  const TranslateRoute route = route_translate(o, models.image_size());
  return route.scene ? translate_scene(o, models, progress) : translate_tiles(o, route.probes, models, progress);
}

TranslatePlan plan_translate(const TranslateOptions& o, Models& models) {
  validate(o);
  TranslatePlan p;
  p.scene = route_translate(o, models.image_size()).scene;
  if (p.scene) {
    const ScenePlan plan = prepare_scene(o, models);  // its output folders go with it
    const SceneCost cost = scene_cost(plan, o, models);
    p.width = plan.grid.width;
    p.height = plan.grid.height;
    const auto& gt = plan.grid.geotransform;
    p.grid = plan.grid.georeferenced
                 ? fmt::format("{:.10g} x {:.10g} m pixels from ({:.10g}, {:.10g})", gt[1], -gt[5], gt[0], gt[3])
                 : "no georeferencing";
    if (!plan.grid.chosen.empty()) p.grid += ", in " + plan.grid.chosen;
    p.windows = cost.windows;
    p.cost = cost.run;
    p.memory_bytes = cost.canvas_bytes;
    for (const PlannedFile& f : plan.outputs.gate.files()) p.outputs.push_back(f);
    return p;
  }
  const OutputPlan plan = plan_tile_outputs(o, generated_of(o), models);
  p.width = p.height = static_cast<int>(models.image_size());
  p.cost = tile_run_cost(o.sampling, o.samples, true);
  p.outputs = plan.gate.files();
  return p;
}

std::string describe(const TranslatePlan& p) {
  std::string out = fmt::format("path: {}\n", p.scene ? "scene" : "tile");
  out += fmt::format("size: {} x {} pixels{}\n", p.width, p.height, p.grid.empty() ? "" : ", " + p.grid);
  out += fmt::format("windows: {}\n", p.windows);
  out += "cost: " + describe(p.cost) + "\n";
  if (p.scene) out += fmt::format("memory: about {:.1f} MB for the latent canvas\n", p.memory_bytes / 1e6);
  for (const PlannedFile& f : p.outputs) out += "output: " + f.path + " (" + file_kind_name(f.kind) + ", " + f.flag + ")\n";
  return out;
}

RunResult generate(const GenerateOptions& o, Models& models, const ProgressFn& progress) {
  validate(o);
  const std::vector<Modality> generated = generated_modalities({}, o.to);
  OutputPlan plan = plan_outputs(o.output, o.samples, generated, generated, {models.directory()});
  plan.gate.make_dirs();
  spdlog::info("generate {} ({} steps, {}, {} sample(s))", join_modalities(generated),
               o.sampling.sampler.steps, solver_name(o.sampling.sampler.solver), o.samples);
  return run(o.sampling, o.output, o.samples, {}, generated, std::nullopt, {}, plan, models, progress, "generate");
}

}  // namespace copgen
