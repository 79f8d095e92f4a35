#include "copgen/pipeline.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "copgen/cancel.hpp"
#include "copgen/conditioning.hpp"
#include "copgen/tuples.hpp"
#include "copgen/error.hpp"
#include "copgen/npy.hpp"
#include "copgen/outputs.hpp"
#include "copgen/pixels.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/version.hpp"
#include "pipeline_detail.hpp"

namespace copgen {

namespace fs = std::filesystem;

std::uint64_t random_seed() {
  std::random_device rd;
  const std::uint64_t hi = rd(), lo = rd();
  return ((hi << 32) | lo) & ((std::uint64_t{1} << 53) - 1);  // exact in JSON and Python floats
}

namespace detail {

bool has_suffix_ci(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  return std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
  });
}

void validate_common(const RunOptions& o, const std::vector<Modality>& to) {
  if (o.output.empty()) throw UsageError("-o/--output: an output path is required");
  if (o.samples < 1) throw UsageError("--samples: must be at least 1, got " + std::to_string(o.samples));
  if (o.batch_size < 1) {
    throw UsageError("--batch-size: must be at least 1, got " + std::to_string(o.batch_size));
  }
  validate(o.sampler);
  validate(o.guidance);
  if (o.format != "GTiff" && o.format != "COG") {
    throw UsageError("--format: unknown format '" + o.format + "' (expected GTiff or COG)");
  }
  std::set<Modality> seen;
  for (Modality m : to) {
    if (!seen.insert(m).second) throw UsageError("--to: modality " + modality_name(m) + " is given more than once");
  }
}

std::vector<Modality> generated_of(const TranslateOptions& o) {
  if (!o.to.empty()) return sorted_modalities(o.to);
  std::vector<Modality> out;
  for (Modality m : kAllModalities) {
    bool given = std::any_of(o.inputs.begin(), o.inputs.end(),
                             [m](const GivenInput& g) { return g.modality == m; });
    if (!given) out.push_back(m);
  }
  return out;
}

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string number_str(double v) { return fmt::format("{:g}", v); }

torch::Tensor read_given_npy(const std::string& path, const std::string& what, int64_t c, int64_t h) {
  if (!path_exists(path)) throw InputError(what + " '" + path + "': file not found");
  torch::Tensor t = read_npy(path);
  if (!(t.dim() == 3 && t.size(1) == h && t.size(2) == h && (t.size(0) == c || t.size(0) == 2 * c))) {
    throw InputError(what + " '" + path + "': expected a latent [" + std::to_string(c) + ", " + std::to_string(h) +
                     ", " + std::to_string(h) + "] or autoencoder moments [" + std::to_string(2 * c) + ", " +
                     std::to_string(h) + ", " + std::to_string(h) + "], found " + shape_str(t));
  }
  if (!torch::isfinite(t).all().item<bool>()) {
    throw InputError(what + " '" + path + "': contains NaN or infinite values");
  }
  const double peak = t.abs().max().item<double>();
  if (peak > kMaxLatentMagnitude) {
    throw InputError(what + " '" + path + "': holds values up to " + number_str(peak) +
                     " in magnitude; autoencoder latents and moments stay far below " +
                     number_str(kMaxLatentMagnitude) + " (is it a latent of this autoencoder?)");
  }
  return t;
}

// A given modality as read from disk: a latent used as is, posterior moments, or pixels
// (encoded to moments once, before sampling).
struct GivenSource {
  Modality modality;
  std::string path;
  torch::Tensor latent;   // [C, h, w] or undefined
  torch::Tensor moments;  // [2C, h, w] or undefined (CPU float32)
  torch::Tensor pixels;   // [3, H, W] uint8 read from a raster, to be encoded
  std::vector<std::uint8_t> valid;  // [H * W], 0 = nodata (GDAL's mask of band 1); empty: all valid
};

GivenSource load_given(const GivenInput& in, Models& models, GeoInfo* geo) {
  const std::string what = modality_name(in.modality) + " input";
  GivenSource src{in.modality, in.path, {}, {}, {}, {}};
  const int64_t c = models.latent_channels(), h = models.latent_size();
  if (has_suffix_ci(in.path, ".npy")) {
    torch::Tensor t = read_given_npy(in.path, what, c, h);
    (t.size(0) == c ? src.latent : src.moments) = t;
    return src;
  }
  const RasterInfo info = probe_raster(in.path, what);
  const int size = models.image_size();
  if (info.bands != 3 || info.data_type != "Byte" || info.width != size || info.height != size) {
    throw InputError(what + " '" + in.path + "': expected a " + std::to_string(size) + " x " +
                     std::to_string(size) + " thumbnail of 3 Byte bands, found " +
                     std::to_string(info.width) + " x " + std::to_string(info.height) + " with " +
                     std::to_string(info.bands) + " band(s) of " + info.data_type);
  }
  const ImageU8 img = read_image_u8(in.path, what);
  if (geo != nullptr) *geo = img.geo;
  src.pixels = image_to_tensor(img);
  src.valid = img.valid;
  if (!src.valid.empty()) {  // nodata pixels are encoded as 0, as scenes render them
    const torch::Tensor v = torch::from_blob(const_cast<std::uint8_t*>(src.valid.data()),
                                             {1, img.height, img.width}, torch::kUInt8);
    src.pixels = torch::where(v != 0, src.pixels, torch::zeros_like(src.pixels));
  }
  return src;
}

// Encodes the images among `given` to posterior moments, one batch for all of them.
void encode_given(std::vector<GivenSource>& given, Models& models) {
  std::vector<torch::Tensor> batch;
  for (const GivenSource& g : given) {
    if (g.pixels.defined()) batch.push_back(pixels_to_model(g.pixels));
  }
  if (batch.empty()) return;
  const torch::Tensor moments = models.encode_moments(torch::stack(batch, 0)).to(torch::kCPU);
  int64_t i = 0;
  for (GivenSource& g : given) {
    if (g.pixels.defined()) g.moments = moments[i++];
  }
}

std::vector<std::string> band_descriptions(Modality m) {
  switch (m) {
    case Modality::DEM: return {"hillshade", "hillshade", "hillshade"};
    case Modality::S1RTC: return {"VV (dB, stretched)", "VV+VH (stretched)", "VH (dB, stretched)"};
    case Modality::S2L1C:
    case Modality::S2L2A: return {"B04 (red)", "B03 (green)", "B02 (blue)"};
  }
  return {};
}

std::string insert_sample_suffix(const std::string& path, int k, int n) {
  if (n <= 1) return path;
  const fs::path p(path);
  const std::string suffix = "_s" + std::to_string(k);
  return (p.parent_path() / (p.stem().string() + suffix + p.extension().string())).string();
}

OutputPlan plan_outputs(const RunOptions& o, const std::vector<Modality>& generated,
                        const std::vector<Modality>& saved_latent_modalities, const std::vector<std::string>& inputs) {
  OutputPlan plan;
  std::set<std::string> all;
  std::set<std::string> dirs;
  std::vector<std::string> input_paths;
  for (const std::string& in : inputs) {
    for (const std::string& f : input_files(in)) input_paths.push_back(f);
  }
  // -o out/, an existing folder or several outputs: the folder is made if missing
  const bool dir_mode = o.output.find("{modality}") == std::string::npos &&
                        (o.output.back() == '/' || fs::is_directory(o.output) || generated.size() > 1);
  const auto check = [&](const std::string& p, const std::string& what) {
    check_output_file(p, input_paths, what);
    std::error_code ec;
    if (!o.overwrite && fs::exists(p, ec)) {
      throw OutputError(what + " '" + p + "' exists (use --overwrite to replace it)");
    }
  };
  for (int k = 0; k < o.samples; ++k) {
    std::vector<std::string> row;
    for (Modality m : generated) {
      const std::string p = output_path(o.output, generated, m, k, o.samples);
      if (!all.insert(p).second) {
        throw UsageError("-o '" + o.output + "': two outputs would both be written to '" + p + "'");
      }
      check_output_extension(p, "-o");
      check(p, "output");
      dirs.insert(fs::path(p).parent_path().string());
      row.push_back(p);
    }
    plan.images.push_back(row);
    std::vector<std::string> lrow(kNumModalities);
    if (!o.save_latents_dir.empty()) {
      for (Modality m : saved_latent_modalities) {
        const std::string p = insert_sample_suffix(
            (fs::path(o.save_latents_dir) / (modality_name(m) + ".npy")).string(), k, o.samples);
        check(p, "latent output");
        if (!all.insert(p).second) {
          throw UsageError("--save-latents '" + o.save_latents_dir + "': '" + p + "' collides with another output");
        }
        lrow[static_cast<size_t>(modality_index(m))] = p;
      }
    }
    plan.latents.push_back(lrow);
  }
  // Folders are made only once every check passed; the plan removes them again if the run
  // ends before writing into them.
  for (const std::string& d : dirs) {
    const std::string dir = d.empty() ? "." : d;
    std::error_code ec;
    if (!dir_mode && !fs::is_directory(dir, ec)) {
      throw OutputError("output directory '" + dir + "' does not exist or is not a directory");
    }
    check_writable_dir(dir, "output directory");
  }
  if (!o.save_latents_dir.empty()) check_writable_dir(o.save_latents_dir, "--save-latents directory");
  for (const std::string& d : dirs) {
    if (dir_mode) plan.dirs.create(d, "output directory");
  }
  if (!o.save_latents_dir.empty()) plan.dirs.create(o.save_latents_dir, "--save-latents directory");
  return plan;
}

std::map<std::string, std::string> run_metadata(const RunOptions& o, const Models& models, std::uint64_t seed,
                                                const std::string& mode, const std::vector<Modality>& given_mods,
                                                const Roles& roles) {
  const std::vector<Modality>& generated = roles.generated;
  std::map<std::string, std::string> meta = {
      {"COPGEN_VERSION", kVersion},
      {"COPGEN_MODELS_SHA256", models.manifest().sha256},
      {"COPGEN_MODELS_SOURCE", models.manifest().backbone.source},
      {"COPGEN_MODE", mode},
      {"COPGEN_SEED", std::to_string(seed)},
      {"COPGEN_STEPS", std::to_string(o.sampler.steps)},
      {"COPGEN_SOLVER", solver_name(o.sampler.solver)},
      {"COPGEN_TIME_GRID", time_grid_name(o.sampler.grid)},
      {"COPGEN_GUIDANCE_SCALE", std::to_string(o.guidance.scale)},
      {"COPGEN_BATCH_SIZE", std::to_string(o.batch_size)},
      {"COPGEN_GIVEN", given_mods.empty() ? "none" : join_modalities(given_mods)},
      {"COPGEN_GENERATED", join_modalities(generated)},
      {"COPGEN_UNUSED", roles.unused.empty() ? "none" : join_modalities(roles.unused) + " (noise at t=N)"},
      {"COPGEN_COND_LATENT", cond_latent_name(o.cond_latent)},
      {"COPGEN_SAMPLES", std::to_string(o.samples)},
  };
  const auto settings = models.settings_metadata();  // precisions and TF32
  meta.insert(settings.begin(), settings.end());
  return meta;
}

// Where the outputs of tiles are nodata: where any given input is (GDAL's mask of its band
// 1), unless --fill-nodata; the same rule as scenes (docs/scenes.md). Empty: all valid.
std::vector<std::uint8_t> tile_nodata_mask(const std::vector<GivenSource>& given, bool fill_nodata) {
  std::vector<std::uint8_t> mask;
  for (const GivenSource& g : given) {
    if (g.valid.empty()) continue;
    const auto invalid = std::count(g.valid.begin(), g.valid.end(), std::uint8_t{0});
    spdlog::info("{} input '{}': {} of {} pixels are nodata; they are {} in the outputs", modality_name(g.modality),
                 g.path, invalid, g.valid.size(), fill_nodata ? "generated (--fill-nodata)" : "nodata");
    if (fill_nodata) continue;
    if (mask.empty()) mask.assign(g.valid.size(), 255);
    for (size_t i = 0; i < mask.size(); ++i) {
      if (g.valid[i] == 0) mask[i] = 0;
    }
  }
  return mask;
}

RunResult run(const RunOptions& o, std::vector<GivenSource> given, const std::vector<Modality>& generated,
              const std::optional<GeoInfo>& geo, const std::vector<std::uint8_t>& mask, const OutputPlan& plan,
              Models& models, const ProgressFn& progress, const std::string& mode) {
  const auto started = std::chrono::steady_clock::now();
  RunResult result;
  result.seed = o.seed.value_or(random_seed());
  if (!o.seed) spdlog::info("seed: {} (random; pass --seed {} to reproduce)", result.seed, result.seed);

  std::sort(given.begin(), given.end(), [](const GivenSource& a, const GivenSource& b) {
    return modality_index(a.modality) < modality_index(b.modality);
  });
  std::vector<Modality> given_mods;
  for (const auto& g : given) given_mods.push_back(g.modality);

  const int chunks = (o.samples + o.batch_size - 1) / o.batch_size;
  const int calls_per_step = (o.guidance.scale != 0.0 && !given.empty()) ? 2 : 1;
  const int calls_total = chunks * o.sampler.steps;
  const Roles roles = Roles::make(given_mods, generated);

  // the tuple every sample of this run shares
  TupleInputs tuple;
  for (const GivenSource& g : given) {
    tuple.label += (tuple.label.empty() ? "" : ", ") + g.path;
    tuple.given[g.modality] = g.pixels.defined() ? GivenData{{}, g.moments, {}} : GivenData{{}, g.moments, g.latent};
  }
  if (tuple.label.empty()) tuple.label = "unconditional samples";
  SamplingSettings settings;
  settings.sampler = o.sampler;
  settings.guidance = o.guidance;
  settings.cond_latent = o.cond_latent;

  at::Generator gen = at::detail::createCPUGenerator(result.seed);

  const std::map<std::string, std::string> meta = run_metadata(o, models, result.seed, mode, given_mods, roles);

  for (int chunk = 0; chunk < chunks; ++chunk) {
    throw_if_stop_requested();
    const int first = chunk * o.batch_size;
    const int64_t b = std::min(o.batch_size, o.samples - first);
    const std::vector<TupleOutputs> outs = sample_tuples(
        models, roles, std::vector<TupleInputs>(static_cast<size_t>(b), tuple), settings, gen, [&](int done, int) {
          result.network_calls += calls_per_step;
          if (progress) progress(chunk * o.sampler.steps + done, calls_total);
          throw_if_stop_requested();
        });

    for (int64_t j = 0; j < b; ++j) {
      const int k = first + static_cast<int>(j);
      const TupleOutputs& out = outs[static_cast<size_t>(j)];
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
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace detail

using namespace detail;

std::string output_path(const std::string& output, const std::vector<Modality>& modalities,
                        Modality modality, int k, int n) {
  std::string path;
  const auto pos = output.find("{modality}");
  if (pos != std::string::npos) {
    path = output;
    for (auto p = path.find("{modality}"); p != std::string::npos; p = path.find("{modality}")) {
      path.replace(p, 10, modality_name(modality));
    }
  } else if (output.back() == '/' || fs::is_directory(output) || modalities.size() > 1) {
    if (modalities.size() > 1 && output.back() != '/' && !fs::is_directory(output) &&
        fs::path(output).has_extension()) {
      throw UsageError("-o '" + output + "': " + std::to_string(modalities.size()) +
                       " modalities are generated (" + join_modalities(modalities) +
                       "); give a directory or a pattern with {modality}");
    }
    path = (fs::path(output) / (modality_name(modality) + ".tif")).string();
  } else {
    path = output;
  }
  return insert_sample_suffix(path, k, n);
}

void validate(const TranslateOptions& o) {
  if (o.inputs.empty()) throw UsageError("--from: at least one given modality with an input is required");
  std::set<Modality> given;
  for (const GivenInput& g : o.inputs) {
    if (!given.insert(g.modality).second) {
      throw UsageError("--from: modality " + modality_name(g.modality) + " is given more than once");
    }
    if (g.path.empty()) throw UsageError("--input: empty path for " + modality_name(g.modality));
  }
  for (Modality m : o.to) {
    if (given.count(m)) {
      throw UsageError("--to " + modality_name(m) + " is also given with --from");
    }
  }
  const std::vector<Modality> gen = generated_of(o);
  if (gen.empty()) throw UsageError("--to: nothing to generate (every modality is given with --from)");
  validate_common(o, o.to);
  validate(o.scene, gen, o.samples);
}

void validate(const GenerateOptions& o) {
  validate_common(o, o.to);
  if (o.cond_latent != CondLatent::Sample) {
    // harmless, but say so: generate has no given modality to encode
    spdlog::debug("--cond-latent has no effect on generate");
  }
}

namespace {

// True when every input is a .npy latent or a 256 x 256 (image_size) 3-band Byte
// thumbnail: those are sampled as tiles; anything else is a scene.
bool all_tiles(const TranslateOptions& o, const Models& models) {
  // physical outputs and per-pixel summaries are written by the scene path, for tiles too
  if (o.scene.force || o.scene.output_kind == OutputKind::Physical || o.scene.summary_mean ||
      o.scene.summary_std) {
    return false;
  }
  for (const GivenInput& g : o.inputs) {
    if (has_suffix_ci(g.path, ".npy")) continue;
    std::error_code ec;
    if (fs::is_directory(g.path, ec) || (g.path.find(',') != std::string::npos && !path_exists(g.path))) return false;
    const RasterInfo info = probe_raster(g.path, modality_name(g.modality) + " input");
    const bool tile = info.bands == 3 && info.data_type == "Byte" && info.width == models.image_size() &&
                      info.height == models.image_size() && o.scene.input_kind != InputKind::Physical;
    if (!tile) return false;
  }
  return true;
}

}  // namespace

RunResult translate(const TranslateOptions& o, Models& models, const ProgressFn& progress) {
  validate(o);
  if (!all_tiles(o, models)) return translate_scene(o, models, progress);
  const std::vector<Modality> generated = generated_of(o);
  std::vector<Modality> latent_mods = generated;
  for (const GivenInput& g : o.inputs) latent_mods.push_back(g.modality);

  // every input is read and checked before any output path is touched
  std::vector<GivenSource> given;
  std::optional<GeoInfo> geo;
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    GeoInfo gi;
    given.push_back(load_given(o.inputs[i], models, &gi));
    if (i == 0) geo = gi;  // outputs take the first input's georeferencing
  }
  std::vector<std::string> input_paths;
  for (const GivenInput& g : o.inputs) input_paths.push_back(g.path);
  const OutputPlan plan = plan_outputs(o, generated, sorted_modalities(latent_mods), input_paths);
  const std::vector<std::uint8_t> mask = tile_nodata_mask(given, o.scene.fill_nodata);
  encode_given(given, models);
  spdlog::info("translate {} -> {} ({} steps, {}, {} sample(s))",
               join_modalities(sorted_modalities([&] {
                 std::vector<Modality> v;
                 for (const auto& g : o.inputs) v.push_back(g.modality);
                 return v;
               }())),
               join_modalities(generated), o.sampler.steps, solver_name(o.sampler.solver), o.samples);
  return run(o, std::move(given), generated, geo, mask, plan, models, progress, "translate");
}

RunResult generate(const GenerateOptions& o, Models& models, const ProgressFn& progress) {
  validate(o);
  const std::vector<Modality> generated =
      o.to.empty() ? std::vector<Modality>(kAllModalities.begin(), kAllModalities.end())
                   : sorted_modalities(o.to);
  const OutputPlan plan = plan_outputs(o, generated, generated, {});
  spdlog::info("generate {} ({} steps, {}, {} sample(s))", join_modalities(generated),
               o.sampler.steps, solver_name(o.sampler.solver), o.samples);
  return run(o, {}, generated, std::nullopt, {}, plan, models, progress, "generate");
}

}  // namespace copgen
