// copgen translate: the missing modalities from given ones.
#include <algorithm>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "progress.hpp"
#include "copgen/batch.hpp"
#include "copgen/error.hpp"
#include "copgen/manifest.hpp"
#include "copgen/runtime.hpp"
#include "copgen/stac.hpp"

namespace copgen::cli {

namespace {

struct TranslateFlags {
  TranslateOptions options;
  SamplingFlags sampling;
  std::vector<std::string> from, to, paths, specs;
  std::string cond_latent = "sample";
  bool dry_run = false;
};

std::vector<GivenInput> parse_inputs(const std::vector<std::string>& from, const std::vector<std::string>& paths,
                                     const std::vector<std::string>& specs) {
  std::vector<GivenInput> inputs;
  if (!paths.empty() && !specs.empty()) {
    throw UsageError("-i and --input cannot be mixed; use one form for every input");
  }
  const std::vector<Modality> mods = parse_modality_list(from, "--from");
  if (!specs.empty()) {
    std::vector<Modality> named;
    for (const std::string& s : specs) {
      auto [m, path] = parse_input_spec(s, "--input");
      if (std::find(named.begin(), named.end(), m) == named.end()) named.push_back(m);  // repeated: a mosaic
      inputs.push_back({m, std::move(path)});
    }
    if (!mods.empty() && sorted_modalities(mods) != sorted_modalities(named)) {
      throw UsageError("--from " + join_modalities(mods) + " does not match the modalities of --input (" +
                       join_modalities(named) + ")");
    }
    return inputs;
  }
  if (mods.empty()) throw UsageError("--from: give the modalities of the inputs (e.g. --from S2L1C -i l1c.tif)");
  if (mods.size() != paths.size()) {
    throw UsageError("--from names " + std::to_string(mods.size()) + " modalities (" + join_modalities(mods) +
                     ") but -i gives " + std::to_string(paths.size()) +
                     " input(s); give one -i per modality, in the same order");
  }
  for (size_t i = 0; i < mods.size(); ++i) inputs.push_back({mods[i], paths[i]});
  return inputs;
}

// ---- batch mode (--input-dir / --inputs-from): copgen/batch.hpp does the work ----------

struct BatchFlags {
  BatchOptions options;
  std::string shard;
  bool no_index = false;  // --no-index
  std::vector<CLI::Option*> batch_only;  // meaningless without --input-dir/--inputs-from
  CLI::Option* input_dir = nullptr;
  CLI::Option* inputs_from = nullptr;
  bool requested() const { return input_dir->count() > 0 || inputs_from->count() > 0; }
};

std::shared_ptr<BatchFlags> add_batch_flags(CLI::App* cmd) {
  auto b = std::make_shared<BatchFlags>();
  BatchOptions& o = b->options;
  const std::string group = "Batch (a folder tree or list of tuples; docs/batch.md)";
  b->input_dir = cmd->add_option("--input-dir", o.input_dir,
                                 "Translate every tuple under DIR: a Major TOM tree (Core-<MOD>/<row>/<cell>/<product>) "
                                 "or one folder per modality")->group(group);
  b->inputs_from = cmd->add_option("--inputs-from", o.inputs_from,
                                   "Translate the tuples listed in FILE (lines of MOD=PATH fields)")->group(group);
  b->batch_only = {
      cmd->add_option("--output-dir", o.output.path, "Output tree (mirrors the input layout)")
          ->check(kOutputPath)
          ->group(group),
      cmd->add_option("--shard", b->shard, "Process shard I of N (I/N, by a hash of each tuple's key)")->group(group),
      cmd->add_option("--report", o.report, "JSON run report (default: OUT/copgen-report.json)")
          ->check(kOutputPath)
          ->group(group),
      cmd->add_flag("--fail-fast", o.fail_fast, "Stop at the first failed tuple")->group(group),
      cmd->add_option("--readers", o.readers, "Reader threads prefetching the next batches")
          ->capture_default_str()->group(group),
      cmd->add_flag("--no-index", b->no_index,
                    "Do not write the contact sheet OUT/index.html (small pictures of every tuple, failures, links)")
          ->group(group),
      cmd->add_option("--index-page-size", o.index_page_size, "Tuples per page of the contact sheet")
          ->capture_default_str()->group(group)};
  cmd->get_option("--output")->required(false);  // batch mode writes to --output-dir
  return b;
}

int run_batch_mode(TranslateFlags& flags, BatchFlags& batch) {
  if (!flags.paths.empty() || !flags.specs.empty()) {
    throw UsageError("--input-dir/--inputs-from cannot be used with -i/--input");
  }
  const TranslateOptions& t = flags.options;
  if (!t.output.path.empty()) throw UsageError("-o/--output: use --output-dir with --input-dir/--inputs-from");
  if (t.samples != 1) {
    throw UsageError("--samples: a batch run writes one sample per tuple (got --samples " + std::to_string(t.samples) +
                     ")");
  }
  BatchOptions& o = batch.options;
  ModelOptions mo;
  o.sampling = t.sampling;  // --steps, --guidance-scale, --batch-size
  apply_sampling_flags(flags.sampling, o.sampling, mo);
  o.sampling.cond_latent = parse_cond_latent(flags.cond_latent);
  const std::string output_dir = o.output.path;
  o.output = t.output;  // --format, --overwrite (and --save-latents, which validate refuses)
  o.output.path = output_dir;
  o.scene = t.scene;
  o.from = parse_modality_list(flags.from, "--from");
  o.to = parse_modality_list(flags.to, "--to");
  if (!batch.shard.empty()) o.shard = parse_shard(batch.shard);
  o.index = !batch.no_index;
  validate(o);
  if (flags.dry_run) {
    std::cout << describe(plan_batch(o, models_dir(flags.sampling))) << std::flush;
    return 0;
  }
  Models models = Models::load(models_dir(flags.sampling), mo);
  BatchProgressLine line(spdlog::get_level() <= spdlog::level::info);
  const BatchResult r = run_batch(o, models, [&](const BatchProgress& p) { line.update(p); });
  line.finish();
  if (r.interrupted) throw Interrupted();
  return r.exit_code();
}

}  // namespace

// ---- scenes (inputs other than 256 x 256 thumbnails): copgen/scene.hpp does the work ----

struct SceneFlags {
  std::string input_kind = "auto", tiling = "fused", grid_from, extent = "intersection",
              output_kind = "thumbnail", summary, mosaic_order = "listed";
  S2OffsetFlags offset;
  CLI::Option* target_res = nullptr;
  double target_res_m = 10.0;
  WindowFlags window;
  std::vector<std::string> assets;
};

std::shared_ptr<SceneFlags> add_scene_flags(CLI::App* cmd, SceneOptions& s) {
  auto f = std::make_shared<SceneFlags>();
  const std::string group = "Scenes (any size, physical bands; docs/scenes.md)";
  cmd->add_option("--input-kind", f->input_kind, "auto, thumbnail or physical (auto: from bands, type, names)")
      ->capture_default_str()->group(group);
  cmd->add_option("--tiling", f->tiling, "fused (one coherent sample) or independent (windows alone, blended)")
      ->capture_default_str()->group(group);
  cmd->add_option("--overlap", s.overlap, "Window overlap in pixels (multiple of 8)")->capture_default_str()->group(group);
  cmd->add_option("--grid-from", f->grid_from,
                  "Modality whose input grid is the target, exactly: CRS, origin and pixel size (default: the "
                  "first 10 m input's CRS and alignment at 10 m)")
      ->group(group);
  cmd->add_option("--target-crs", s.target_crs,
                  "Target CRS, projected in metres (any GDAL SRS, e.g. EPSG:32633; default: the first 10 m "
                  "input's, or for inputs in degrees the UTM/UPS zone of their centre)")
      ->group(group);
  f->target_res = cmd->add_option("--target-res", f->target_res_m,
                                  "Target resolution in metres (default: 10, or the --grid-from input's pixel size)")
                      ->group(group);
  cmd->add_option("--extent", f->extent, "intersection or union of the inputs")->capture_default_str()->group(group);
  cmd->add_option("--mosaic-order", f->mosaic_order,
                  "Several --input of one modality, where they overlap: listed (the first given on top) or recent "
                  "(the most recent item on top; each needs a date)")
      ->capture_default_str()->group(group);
  cmd->add_flag("--fill-nodata", s.fill_nodata, "Generate where inputs are nodata instead of masking")->group(group);
  add_s2_offset_flags(cmd, f->offset, group);
  cmd->add_option("--output-kind", f->output_kind, "thumbnail, or physical (S2 only: uint16 B04,B03,B02 DNs)")
      ->capture_default_str()->group(group);
  cmd->add_option("--summary", f->summary, "With --samples N: also write per-pixel mean and/or std (mean,std)")
      ->group(group);
  add_window_flags(cmd, f->window, group);
  cmd->add_option("--asset", f->assets,
                  "STAC item inputs: the asset of a band role, ROLE=KEY (red, green, blue, vv, vh, elevation)")
      ->group(group);
  return f;
}

void apply_scene_flags(const SceneFlags& f, SceneOptions& s) {
  s.input_kind = parse_input_kind(f.input_kind);
  s.tiling = parse_tiling(f.tiling);
  if (!f.grid_from.empty()) s.grid_from = parse_modality(f.grid_from, "--grid-from");
  if (f.target_res->count() > 0) s.target_resolution = f.target_res_m;
  apply_window_flags(f.window, s);
  for (const std::string& a : f.assets) add_asset_override(s.assets, a);
  s.union_extent = parse_union_extent(f.extent);
  s.mosaic_order = parse_mosaic_order(f.mosaic_order);
  s.output_kind = parse_output_kind(f.output_kind);
  apply_s2_offset_flags(f.offset, s);
  if (!f.summary.empty()) parse_summary(f.summary, s);
}

Command add_translate(CLI::App& app, LogFlags& log) {
  auto flags = std::make_shared<TranslateFlags>();
  TranslateOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand("translate", "Generate the missing modalities from given ones");
  cmd->add_option("--from", flags->from, "Given modalities (comma-separated or repeated), one input each")
      ->delimiter(',');
  cmd->add_option("-i", flags->paths, "Input of each --from modality, repeated in the same order");
  cmd->add_option("--input", flags->specs,
                  "Input as MODALITY=PATH (repeatable; one modality repeated: a mosaic of those inputs, scene path "
                  "only, stacked as --mosaic-order says)");
  cmd->add_option("--to", flags->to, "Modalities to generate (default: every modality not given)")->delimiter(',');
  add_output_flags(cmd, o.output, "Also write the given and generated latents as .npy into DIR");
  cmd->add_option("--samples", o.samples, "Samples per input (files suffixed _s<k>)")->capture_default_str();
  cmd->add_option("--cond-latent", flags->cond_latent, "Latent of a given image: sample (the reference) or mean")
      ->capture_default_str();
  cmd->add_option("--stac-out", o.output.stac_item,
                  "Also write a STAC item (FILE.json) describing the outputs (in batch mode: a file name, beside "
                  "each tuple's outputs)")
      ->check(kOutputPath);
  cmd->add_flag("--dry-run", flags->dry_run,
                "Print the plan (grid, windows, cost, memory, outputs; in batch mode the tuples) and exit "
                "without sampling or writing");
  add_sampling_flags(cmd, flags->sampling, o.sampling);
  add_log_flags(cmd, log);
  auto batch = add_batch_flags(cmd);
  auto scene = add_scene_flags(cmd, o.scene);
  cmd->footer(kExitCodesAndModels);

  return {cmd, [flags, batch, scene]() {
            apply_scene_flags(*scene, flags->options.scene);  // batch mode takes them too
            if (batch->requested()) return run_batch_mode(*flags, *batch);
            for (const CLI::Option* opt : batch->batch_only) {
              if (opt->count() > 0) throw UsageError(opt->get_name() + " needs --input-dir or --inputs-from");
            }
            TranslateOptions& o = flags->options;
            ModelOptions mo;
            apply_sampling_flags(flags->sampling, o.sampling, mo);
            o.sampling.cond_latent = parse_cond_latent(flags->cond_latent);
            o.inputs = parse_inputs(flags->from, flags->paths, flags->specs);
            o.to = parse_modality_list(flags->to, "--to");
            validate(o);
            // tile or scene, and what only tiles take, before the models load
            const std::string dir = models_dir(flags->sampling);
            (void)route_translate(o, read_manifest(dir).image_size);
            Models models = Models::load(dir, mo);
            if (flags->dry_run) {
              std::cout << describe(plan_translate(o, models)) << std::flush;
              return 0;
            }
            ProgressLine progress(spdlog::get_level() <= spdlog::level::info);
            const RunResult r = translate(o, models, [&](std::int64_t d, std::int64_t t) { progress.update(d, t); });
            progress.finish();
            spdlog::info("done: {} output(s) in {:.1f} s; {}; seed {}", r.outputs.size(), r.seconds,
                         describe(r.cost), r.seed);
            return 0;
          }};
}

}  // namespace copgen::cli
