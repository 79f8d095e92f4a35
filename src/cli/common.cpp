#include "common.hpp"

#include <cerrno>
#include <cstdlib>

#include "copgen/error.hpp"
#include "copgen/runtime.hpp"

namespace copgen::cli {

bool parse_on_off(const std::string& value, const std::string& flag) {
  if (value == "on") return true;
  if (value == "off") return false;
  throw UsageError(flag + ": expected on or off, got '" + value + "'");
}

void add_log_flags(CLI::App* cmd, LogFlags& flags) {
  cmd->add_flag("-v,--verbose", flags.verbosity, "More log output (repeat for more)");
  cmd->add_flag("-q,--quiet", flags.quiet, "Only warnings and errors");
}

void add_sampling_flags(CLI::App* cmd, SamplingFlags& f, SamplingOptions& o) {
  cmd->add_option("--models", f.models, "Models directory (default: $COPGEN_MODELS, else installed)");
  cmd->add_option("--device", f.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--precision", f.precision, kPrecisionHelp)->capture_default_str();
  cmd->add_option("--ae-precision", f.ae_precision, kAePrecisionHelp)->capture_default_str();
  cmd->add_option("--tf32", f.tf32, kTf32Help)->capture_default_str();
  add_seed_option(cmd, f.seed, "Seed of the one random generator, 0 to 2^64-1 (default: random, logged)");
  cmd->add_option("--steps", o.sampler.steps, "Network calls per sample")->capture_default_str();
  cmd->add_option("--solver", f.solver, "dpm-solver-fast (reference), dpm-solver++2m or ddim")
      ->capture_default_str();
  cmd->add_option("--time-grid", f.time_grid, "time-uniform (reference) or logSNR")->capture_default_str();
  cmd->add_option("--guidance-scale", o.guidance.scale,
                  "Classifier-free guidance scale (0: none, as in the paper; doubles the calls)")
      ->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "Samples per network call")->capture_default_str();
  cmd->add_option("--threads", f.threads, "CPU threads (default: every core)");
  cmd->add_option("--cuda-graphs", f.cuda_graphs, "on or off: replay the backbone call as a CUDA graph (CUDA only)")
      ->capture_default_str();
}

void apply_sampling_flags(const SamplingFlags& f, SamplingOptions& o, ModelOptions& mo) {
  o.sampler.solver = parse_solver(f.solver);
  o.sampler.grid = parse_time_grid(f.time_grid);
  if (f.seed) o.seed = f.seed;
  mo.device = f.device;
  mo.precision = parse_precision(f.precision, "--precision");
  mo.ae_precision = parse_precision(f.ae_precision, "--ae-precision");
  mo.tf32 = parse_on_off(f.tf32, "--tf32");
  mo.cuda_graphs = parse_on_off(f.cuda_graphs, "--cuda-graphs");
  if (f.threads < 0) throw UsageError("--threads: must be positive, got " + std::to_string(f.threads));
  configure_threads(f.threads);
}

const CLI::Validator kOutputPath(
    [](std::string& value) { return value.empty() ? std::string("the path is empty") : std::string(); }, "PATH");

CLI::Option* add_output_flags(CLI::App* cmd, OutputOptions& o, const std::string& latents_help) {
  CLI::Option* output =
      cmd->add_option("-o,--output", o.path, "Output file, directory, or pattern with {modality}")
          ->required()
          ->check(kOutputPath);
  cmd->add_option("--save-latents", o.save_latents_dir, latents_help)->check(kOutputPath);
  cmd->add_option("--format", o.format, "GTiff or COG")->capture_default_str();
  cmd->add_flag("--overwrite", o.overwrite, "Replace existing outputs");
  cmd->add_option("--preview", o.preview,
                  "Also write FILE.png: the given and generated modalities side by side, one row per sample, "
                  "nodata as a magenta/grey checkerboard, at most 2048 pixels wide (docs/scenes.md)")
      ->check(kOutputPath);
  return output;
}

void add_window_flags(CLI::App* cmd, WindowFlags& f, const std::string& group) {
  cmd->add_option("--projwin", f.projwin,
                  "Only the region ULX ULY LRX LRY (map coordinates of the grid, or --projwin-srs), as "
                  "gdal_translate -projwin selects its pixels")
      ->expected(4)
      ->group(group);
  cmd->add_option("--projwin-srs", f.projwin_srs, "CRS of --projwin (any GDAL SRS, e.g. EPSG:4326)")->group(group);
  cmd->add_option("--srcwin", f.srcwin, "Only the pixels XOFF YOFF XSIZE YSIZE of the target grid (gdal_translate -srcwin)")
      ->expected(4)
      ->group(group);
}

void add_s2_offset_flags(CLI::App* cmd, S2OffsetFlags& f, const std::string& group) {
  cmd->add_option("--s2-offset", f.mode,
                  "Sentinel-2 DNs carry the +1000 of processing baseline >= 04.00: auto (read from the STAC item, the "
                  "SAFE product's metadata or the band files; none where nothing says), on or off")
      ->capture_default_str()->group(group);
  cmd->add_flag("--l2a-offset", f.l2a_offset, "Deprecated: --s2-offset on")->group(group);
}

void apply_s2_offset_flags(const S2OffsetFlags& f, SceneOptions& s) {
  s.s2_offset = parse_s2_offset(f.mode);
  if (f.l2a_offset && s.s2_offset == S2Offset::Off) {
    throw UsageError("--l2a-offset is also given with --s2-offset off; --l2a-offset means --s2-offset on");
  }
  if (f.l2a_offset) s.s2_offset = S2Offset::On;
}

void apply_window_flags(const WindowFlags& f, SceneOptions& s) {
  if (!f.projwin.empty()) s.projwin = std::array<double, 4>{f.projwin[0], f.projwin[1], f.projwin[2], f.projwin[3]};
  if (!f.srcwin.empty()) s.srcwin = PixelWindow{f.srcwin[0], f.srcwin[1], f.srcwin[2], f.srcwin[3]};
  s.projwin_srs = f.projwin_srs;
}

CLI::Option* add_seed_option(CLI::App* cmd, std::optional<std::uint64_t>& seed, const std::string& help) {
  return cmd->add_option_function<std::string>(
      "--seed",
      [&seed](const std::string& text) {
        const bool digits = !text.empty() && text.size() <= 20 && text.find_first_not_of("0123456789") == std::string::npos;
        errno = 0;
        const unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
        if (!digits || errno == ERANGE) {
          throw CLI::ValidationError("--seed", "must be a whole number from 0 to 18446744073709551615, got '" + text + "'");
        }
        seed = static_cast<std::uint64_t>(v);
      },
      help);
}

std::string models_dir(const SamplingFlags& f) {
  return choose_models_dir(f.models).dir;
}

}  // namespace copgen::cli
