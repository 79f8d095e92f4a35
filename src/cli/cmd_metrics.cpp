// copgen metrics: FID, precision, recall and F of a folder of generated images against a
// folder of real ones (copgen/compare.hpp does the work).
#include <chrono>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "copgen/compare.hpp"
#include "copgen/error.hpp"
#include "copgen/features.hpp"
#include "copgen/models.hpp"
#include "copgen/runtime.hpp"

namespace copgen::cli {

namespace {
struct MetricsFlags {
  CompareOptions options;
  std::string extractors;
  std::string models;
  std::string device = "auto";
  int threads = 0;
};
}  // namespace

Command add_metrics(CLI::App& app, LogFlags& log) {
  auto flags = std::make_shared<MetricsFlags>();
  CompareOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand("metrics", "FID, precision, recall and F of two image folders (docs/eval.md)");
  cmd->add_option("--real", o.real, "Folder of real images (3-band 8-bit, any GDAL format, any size)");
  cmd->add_option("--fake", o.fake, "Folder of generated images");
  cmd->add_option("--json", o.json, "Also write the scores as JSON to FILE")->check(kOutputPath);
  cmd->add_option("--save-features", o.save_features,
                  "Also write the features to DIR/real and DIR/fake (inception.npy, vgg16.npy)")
      ->check(kOutputPath);
  cmd->add_option("--features", o.features, "Score the features in DIR/real and DIR/fake instead of images");
  cmd->add_option("--extractors", flags->extractors,
                  "Folder of inception.pt, vgg16.pt, extractors.json (default: the models directory)");
  cmd->add_option("--models", flags->models, "Models directory, where the extractors are looked for by default");
  cmd->add_option("--device", flags->device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--k", o.pr.k, "Neighbourhood size of precision/recall")->capture_default_str();
  cmd->add_option("--batch-size", o.batch, "Images per extractor call")->capture_default_str();
  cmd->add_option("--threads", flags->threads, "CPU threads (default: every core)");
  add_log_flags(cmd, log);
  cmd->footer(kExitCodesAndModels);

  return {cmd, [flags]() {
            const CompareOptions& o = flags->options;
            validate(o);
            if (flags->threads < 0) throw UsageError("--threads: must be positive, got " + std::to_string(flags->threads));
            configure_threads(flags->threads);
            std::unique_ptr<Extractors> ex;
            if (o.features.empty()) {
              const std::string dir = !flags->extractors.empty() ? flags->extractors
                                      : !flags->models.empty()   ? flags->models
                                                                 : default_models_dir();
              ExtractorOptions eo;
              eo.device = flags->device;
              ex = std::make_unique<Extractors>(Extractors::load(dir, eo));
            }
            const auto started = std::chrono::steady_clock::now();
            double last = 0.0;
            const CompareResult r = compare_image_sets(o, ex.get(), [&](std::int64_t d, std::int64_t t) {
              const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
              if (s - last >= 5.0 || d == t) {
                spdlog::info("features: {}/{} images, {:.1f} s elapsed", d, t, s);
                last = s;
              }
            });
            std::cout << scores_table(r) << std::flush;
            if (!o.json.empty()) spdlog::info("wrote {}", o.json);
            return 0;
          }};
}

}  // namespace copgen::cli
