// copgen translate: the missing modalities from given ones.
#include <memory>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "copgen/error.hpp"
#include "copgen/runtime.hpp"

namespace copgen::cli {

namespace {

struct TranslateFlags {
  TranslateOptions options;
  SamplingFlags sampling;
  std::vector<std::string> from, to, paths, specs;
  std::string cond_latent = "sample";
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
      const auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == s.size()) {
        throw UsageError("--input '" + s + "': expected MODALITY=PATH");
      }
      const Modality m = parse_modality(s.substr(0, eq), "--input");
      if (std::find(named.begin(), named.end(), m) != named.end()) {
        throw UsageError("--input: modality " + modality_name(m) + " is given more than once");
      }
      named.push_back(m);
      inputs.push_back({m, s.substr(eq + 1)});
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

}  // namespace

Command add_translate(CLI::App& app, LogFlags& log) {
  auto flags = std::make_shared<TranslateFlags>();
  TranslateOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand("translate", "Generate the missing modalities from given ones");
  cmd->add_option("--from", flags->from, "Given modalities (comma-separated or repeated), one input each")
      ->delimiter(',');
  cmd->add_option("-i", flags->paths, "Input of each --from modality, repeated in the same order");
  cmd->add_option("--input", flags->specs, "Input as MODALITY=PATH (repeatable)");
  cmd->add_option("--to", flags->to, "Modalities to generate (default: every modality not given)")->delimiter(',');
  cmd->add_option("-o,--output", o.output, "Output file, directory, or pattern with {modality}")->required();
  cmd->add_option("--samples", o.samples, "Samples per input (files suffixed _s<k>)")->capture_default_str();
  cmd->add_option("--cond-latent", flags->cond_latent, "Latent of a given image: sample (the reference) or mean")
      ->capture_default_str();
  cmd->add_option("--save-latents", o.save_latents_dir, "Also write the given and generated latents as .npy into DIR");
  cmd->add_option("--format", o.format, "GTiff or COG")->capture_default_str();
  cmd->add_flag("--overwrite", o.overwrite, "Replace existing outputs");
  add_sampling_flags(cmd, flags->sampling, o);
  add_log_flags(cmd, log);
  cmd->footer(kExitCodes);

  return {cmd, [cmd, flags]() {
            TranslateOptions& o = flags->options;
            ModelOptions mo;
            apply_sampling_flags(cmd, flags->sampling, o, mo);
            o.cond_latent = parse_cond_latent(flags->cond_latent);
            o.inputs = parse_inputs(flags->from, flags->paths, flags->specs);
            o.to = parse_modality_list(flags->to, "--to");
            validate(o);
            Models models = Models::load(models_dir(flags->sampling), mo);
            ProgressLine progress(spdlog::get_level() <= spdlog::level::info);
            const RunResult r = translate(o, models, [&](int d, int t) { progress.update(d, t); });
            progress.finish();
            spdlog::info("done: {} output(s) in {:.1f} s, {} network calls, seed {}", r.outputs.size(), r.seconds,
                         r.network_calls, r.seed);
            return 0;
          }};
}

}  // namespace copgen::cli
