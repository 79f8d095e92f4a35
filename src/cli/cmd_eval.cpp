// copgen eval: the paper's Table 1 protocol on a test set (copgen/evaluation.hpp does the work).
#include <chrono>
#include <memory>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "copgen/error.hpp"
#include "copgen/evaluation.hpp"

namespace copgen::cli {

namespace {
struct EvalFlags {
  EvalOptions options;
  SamplingFlags sampling;
  std::string conditions;
  std::string cond_latent = "sample";
  std::string extractors;
};
}  // namespace

Command add_eval(CLI::App& app, LogFlags& log) {
  auto flags = std::make_shared<EvalFlags>();
  EvalOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand("eval", "Reproduce Table 1: generate for a test set and score each row (docs/eval.md)");
  cmd->add_option("--test-set", o.test_set,
                  "Test tuples: a Major TOM tree (Core-<MOD>/<row>/<cell>/<product>/*thumbnail.png) or one folder "
                  "per modality (DEM/, S1RTC/, S2L1C/, S2L2A/) with matching file names")
      ->required();
  cmd->add_option("-o,--output", o.output, "Output folder: table1.md, table1.csv, table1.json, report.html (+ report/) and the cache")
      ->required()
      ->check(kOutputPath);
  cmd->add_option("--conditions", flags->conditions,
                  "Extra rows after Table 1's five, e.g. \"DEM+S1RTC,S2L1C\" (',' between rows, '+' within one)");
  cmd->add_flag("--compare-paper", o.compare_paper, "Put the paper's values and the differences beside each row");
  cmd->add_option("--limit", o.limit, "Use the first N tuples by key (0: all)")->capture_default_str();
  cmd->add_option("--samples-per-tuple", o.samples_per_tuple, "Generated samples of each tuple per row")
      ->capture_default_str();
  cmd->add_option("--extractors", flags->extractors,
                  "Folder of inception.pt, vgg16.pt, extractors.json (default: the models directory)");
  cmd->add_option("--report-examples", o.report_examples,
                  "Tuples (the first by key) shown as pictures in report.html, per row (0: none)")
      ->capture_default_str();
  cmd->add_option("--k", o.pr.k, "Neighbourhood size of precision/recall")->capture_default_str();
  cmd->add_option("--feature-batch", o.feature_batch, "Images per extractor call")->capture_default_str();
  cmd->add_option("--cond-latent", flags->cond_latent, "Latent of a given image: sample (the reference) or mean")
      ->capture_default_str();
  cmd->add_flag("--overwrite", o.overwrite, "Discard a cache in the output folder made with other settings");
  add_sampling_flags(cmd, flags->sampling, o.sampling);
  add_log_flags(cmd, log);
  cmd->footer(kExitCodesAndModels);

  return {cmd, [flags]() {
            EvalOptions& o = flags->options;
            ModelOptions mo;
            apply_sampling_flags(flags->sampling, o.sampling, mo);
            o.sampling.cond_latent = parse_cond_latent(flags->cond_latent);
            if (!flags->conditions.empty()) o.extra_conditions = parse_conditions(flags->conditions, "--conditions");
            validate(o);
            const std::string models = models_dir(flags->sampling);
            Models m = Models::load(models, mo);
            ExtractorOptions eo;
            eo.device = flags->sampling.device;
            Extractors ex = Extractors::load(flags->extractors.empty() ? models : flags->extractors, eo);

            const auto started = std::chrono::steady_clock::now();
            double last = -1e9;
            std::string last_step;
            const EvalResult r = run_eval(o, m, ex, [&](const std::string& step, std::int64_t d, std::int64_t t) {
              const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
              if (step != last_step || s - last >= 5.0 || d == t) {
                spdlog::info("{}: {}/{}", step, d, t);
                last = s;
                last_step = step;
              }
            });
            spdlog::info("done in {:.1f} s: {} chunk(s) generated, {} reused from the cache; {} feature set(s) "
                         "extracted, {} reused; seed {}",
                         r.seconds, r.cache.chunks_generated, r.cache.chunks_reused, r.cache.features_extracted,
                         r.cache.features_reused, r.seed);
            for (const std::string& f : r.outputs) spdlog::info("wrote {}", f);
            return 0;
          }};
}

}  // namespace copgen::cli
