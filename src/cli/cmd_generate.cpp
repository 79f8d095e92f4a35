// copgen generate: unconditional samples.
#include <memory>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "progress.hpp"
#include "copgen/runtime.hpp"

namespace copgen::cli {

namespace {
struct GenerateFlags {
  GenerateOptions options;
  SamplingFlags sampling;
  std::vector<std::string> to;
};
}  // namespace

Command add_generate(CLI::App& app, LogFlags& log) {
  auto flags = std::make_shared<GenerateFlags>();
  GenerateOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand("generate", "Sample modalities with no condition");
  cmd->add_option("--to", flags->to, "Modalities to generate (default: all four)")->delimiter(',');
  cmd->add_option("-n,--samples", o.samples, "Number of samples (files suffixed _s<k>)")->capture_default_str();
  add_output_flags(cmd, o.output, "Also write the generated latents as .npy into DIR");
  add_sampling_flags(cmd, flags->sampling, o.sampling);
  add_log_flags(cmd, log);
  cmd->footer(kExitCodesAndModels);

  return {cmd, [flags]() {
            GenerateOptions& o = flags->options;
            ModelOptions mo;
            apply_sampling_flags(flags->sampling, o.sampling, mo);
            o.to = parse_modality_list(flags->to, "--to");
            validate(o);
            Models models = Models::load(models_dir(flags->sampling), mo);
            ProgressLine progress(spdlog::get_level() <= spdlog::level::info);
            const RunResult r = generate(o, models, [&](std::int64_t d, std::int64_t t) { progress.update(d, t); });
            progress.finish();
            spdlog::info("done: {} output(s) in {:.1f} s; {}; seed {}", r.outputs.size(), r.seconds,
                         describe(r.cost), r.seed);
            return 0;
          }};
}

}  // namespace copgen::cli
