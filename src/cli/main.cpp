// copgen's command line: parses arguments into the library's option structs, calls the
// library, and maps errors to exit codes. No algorithm lives here.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/modality.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/runtime.hpp"
#include "copgen/version.hpp"

namespace {

constexpr const char* kExitCodes =
    "Exit codes: 0 success, 1 other failure, 2 usage error, 3 input data error,\n"
    "4 model error, 5 output error, 130 interrupted (SIGINT/SIGTERM).\n"
    "Models: --models DIR, else $COPGEN_MODELS, else the installed models directory.";

// Flags shared by translate and generate, bound to their option structs.
struct CommonFlags {
  std::string models;
  std::string device = "auto";
  std::string precision = "auto";
  std::string solver = "dpm-solver-fast";
  std::string time_grid = "time-uniform";
  std::string cond_latent = "sample";
  std::uint64_t seed = 0;
  int threads = 0;
  int verbosity = 0;
  bool quiet = false;
};

void add_common(CLI::App* cmd, CommonFlags& f, copgen::RunOptions& o) {
  cmd->add_option("-o,--output", o.output,
                  "Output file, directory, or pattern with {modality}")->required();
  cmd->add_option("--models", f.models, "Models directory (default: $COPGEN_MODELS, else installed)");
  cmd->add_option("--device", f.device, "auto, cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--precision", f.precision, "auto, fp32, bf16 or fp16 (auto: bf16 on CUDA, fp32 on CPU)")
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "Seed of the one random generator (default: random, logged)");
  cmd->add_option("--steps", o.sampler.steps, "Network calls per sample")->capture_default_str();
  cmd->add_option("--solver", f.solver, "dpm-solver-fast (reference), dpm-solver++2m or ddim")
      ->capture_default_str();
  cmd->add_option("--time-grid", f.time_grid, "time-uniform (reference) or logSNR")->capture_default_str();
  cmd->add_option("--batch-size", o.batch_size, "Samples per network call")->capture_default_str();
  cmd->add_option("--threads", f.threads, "CPU threads (default: every core)");
  cmd->add_option("--save-latents", o.save_latents_dir, "Also write the latents as .npy into DIR");
  cmd->add_option("--format", o.format, "GTiff or COG")->capture_default_str();
  cmd->add_flag("--overwrite", o.overwrite, "Replace existing outputs");
  cmd->add_flag("-v,--verbose", f.verbosity, "More log output (repeat for more)");
  cmd->add_flag("-q,--quiet", f.quiet, "Only warnings and errors");
  cmd->footer(kExitCodes);
}

void apply_common(const CLI::App* cmd, const CommonFlags& f, copgen::RunOptions& o,
                  copgen::ModelOptions& mo) {
  o.sampler.solver = copgen::parse_solver(f.solver);
  o.sampler.grid = copgen::parse_time_grid(f.time_grid);
  o.cond_latent = copgen::parse_cond_latent(f.cond_latent);
  if (cmd->count("--seed") > 0) o.seed = f.seed;
  mo.device = f.device;
  mo.precision = copgen::parse_precision(f.precision);
}

std::vector<copgen::GivenInput> parse_inputs(const std::vector<std::string>& from,
                                             const std::vector<std::string>& paths,
                                             const std::vector<std::string>& specs) {
  std::vector<copgen::GivenInput> inputs;
  if (!paths.empty() && !specs.empty()) {
    throw copgen::UsageError("-i and --input cannot be mixed; use one form for every input");
  }
  const std::vector<copgen::Modality> mods = copgen::parse_modality_list(from, "--from");
  if (!specs.empty()) {
    for (const std::string& s : specs) {
      const auto eq = s.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == s.size()) {
        throw copgen::UsageError("--input '" + s + "': expected MODALITY=PATH");
      }
      inputs.push_back({copgen::parse_modality(s.substr(0, eq), "--input"), s.substr(eq + 1)});
    }
    std::vector<copgen::Modality> named;
    for (const auto& in : inputs) {
      for (const auto& prev : named) {
        if (prev == in.modality) {
          throw copgen::UsageError("--input: modality " + copgen::modality_name(in.modality) +
                                   " is given more than once");
        }
      }
      named.push_back(in.modality);
    }
    if (!mods.empty() && copgen::sorted_modalities(mods) != copgen::sorted_modalities(named)) {
      throw copgen::UsageError("--from " + copgen::join_modalities(mods) +
                               " does not match the modalities of --input (" +
                               copgen::join_modalities(named) + ")");
    }
    return inputs;
  }
  if (mods.empty()) throw copgen::UsageError("--from: give the modalities of the inputs (e.g. --from S2L1C -i l1c.tif)");
  if (mods.size() != paths.size()) {
    throw copgen::UsageError("--from names " + std::to_string(mods.size()) + " modalities (" +
                             copgen::join_modalities(mods) + ") but -i gives " +
                             std::to_string(paths.size()) + " input(s); give one -i per modality, in the same order");
  }
  for (size_t i = 0; i < mods.size(); ++i) inputs.push_back({mods[i], paths[i]});
  return inputs;
}

void on_signal(int) { copgen::request_stop(); }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;  // a second signal ends the process at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void report(const copgen::RunResult& r) {
  spdlog::info("done: {} output(s) in {:.1f} s, {} network calls, seed {}", r.outputs.size(),
               r.seconds, r.network_calls, r.seed);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"copgen: translate between Earth-observation modalities (DEM, S1RTC, S2L1C, S2L2A)\n"
               "with the COP-GEN-Beta diffusion model."};
  app.set_version_flag("--version", std::string("copgen ") + copgen::kVersion);
  app.require_subcommand(1);
  app.footer(kExitCodes);

  // translate
  copgen::TranslateOptions topt;
  CommonFlags tflags;
  std::vector<std::string> from, to, paths, specs;
  auto* translate = app.add_subcommand("translate", "Generate the missing modalities from given ones");
  translate->add_option("--from", from, "Given modalities (comma-separated or repeated), one input each")
      ->delimiter(',');
  translate->add_option("-i", paths, "Input of each --from modality, repeated in the same order");
  translate->add_option("--input", specs, "Input as MODALITY=PATH (repeatable)");
  translate->add_option("--to", to, "Modalities to generate (default: every modality not given)")
      ->delimiter(',');
  translate->add_option("--samples", topt.samples, "Samples per input (files suffixed _s<k>)")
      ->capture_default_str();
  translate->add_option("--cond-latent", tflags.cond_latent,
                        "Latent of a given image: sample (the reference) or mean")
      ->capture_default_str();
  add_common(translate, tflags, topt);

  // generate
  copgen::GenerateOptions gopt;
  CommonFlags gflags;
  std::vector<std::string> gto;
  auto* generate = app.add_subcommand("generate", "Sample modalities with no condition");
  generate->add_option("--to", gto, "Modalities to generate (default: all four)")->delimiter(',');
  generate->add_option("-n,--samples", gopt.samples, "Number of samples")->capture_default_str();
  add_common(generate, gflags, gopt);

  copgen::ModelOptions model_options;
  CommonFlags* flags = nullptr;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "copgen: " << e.what() << "\n";
    std::cerr << "Run 'copgen --help' or 'copgen <command> --help' for usage.\n";
    return static_cast<int>(copgen::ErrorKind::Usage);
  }
  flags = translate->parsed() ? &tflags : &gflags;
  copgen::setup_logging(flags->verbosity, flags->quiet);
  install_signal_handlers();

  try {
    copgen::configure_threads(flags->threads);
    copgen::warn_if_reference_blas();
    copgen::ProgressLine progress(!flags->quiet);
    const auto on_progress = [&](int done, int total) { progress.update(done, total); };
    if (translate->parsed()) {
      apply_common(translate, tflags, topt, model_options);
      topt.inputs = parse_inputs(from, paths, specs);
      topt.to = copgen::parse_modality_list(to, "--to");
      copgen::validate(topt);
      const std::string dir = tflags.models.empty() ? copgen::default_models_dir() : tflags.models;
      copgen::Models models = copgen::Models::load(dir, model_options);
      const copgen::RunResult r = copgen::translate(topt, models, on_progress);
      progress.finish();
      report(r);
    } else {
      apply_common(generate, gflags, gopt, model_options);
      gopt.to = copgen::parse_modality_list(gto, "--to");
      copgen::validate(gopt);
      const std::string dir = gflags.models.empty() ? copgen::default_models_dir() : gflags.models;
      copgen::Models models = copgen::Models::load(dir, model_options);
      const copgen::RunResult r = copgen::generate(gopt, models, on_progress);
      progress.finish();
      report(r);
    }
    return 0;
  } catch (const copgen::Error& e) {
    spdlog::error("{}", e.what());
    return e.exit_code();
  } catch (const c10::Error& e) {
    spdlog::error("torch: {}", e.what_without_backtrace());
    return 1;
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory; try a smaller --batch-size");
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
