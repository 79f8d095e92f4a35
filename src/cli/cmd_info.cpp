// copgen info: what a bug report needs (versions, CUDA, GPUs, GDAL's drivers, BLAS, the
// models directory), as lines of text or as JSON. `copgen --version --verbose` prints the same.
#include <iostream>
#include <memory>

#include "common.hpp"
#include "copgen/provenance.hpp"
#include "copgen/runtime.hpp"

namespace copgen::cli {

namespace {
struct InfoFlags {
  std::string models;
  bool json = false;
};
}  // namespace

Command add_info(CLI::App& app, LogFlags& log) {
  auto f = std::make_shared<InfoFlags>();
  CLI::App* cmd = app.add_subcommand(
      "info", "Print copgen's version and commit, LibTorch, CUDA, GPUs, GDAL, BLAS and the models directory "
              "(paste it into a bug report)");
  cmd->add_option("--models", f->models, "Models directory to describe (default: $COPGEN_MODELS, else installed)");
  cmd->add_flag("--json", f->json, "Print JSON instead of text");
  add_log_flags(cmd, log);
  cmd->footer(kExitCodesAndModels);
  return {cmd, [f]() {
            configure_threads(0);  // the threads a command uses without --threads
            const SystemInfo info = system_info(f->models);
            if (f->json) {
              std::cout << to_json(info).dump(2) << "\n";
            } else {
              std::cout << format_system_info(info);
            }
            std::cout << std::flush;
            return 0;
          }};
}

}  // namespace copgen::cli
