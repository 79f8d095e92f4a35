// copgen bench: speed figures (network calls/s, tuples/s end to end, memory, MFU), with
// an optional side-by-side run of the reference Python pipeline.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "copgen/bench.hpp"
#include "copgen/error.hpp"
#include "copgen/outputs.hpp"
#include "copgen/runtime.hpp"

namespace copgen::cli {

namespace {

struct BenchFlags {
  BenchOptions options;
  std::vector<std::string> precisions = {"auto"};
  std::string models;
  std::string json;
  std::string svg;
  std::string cuda_graphs = "on";
  std::string ae_precision = "auto";
  std::string tf32 = "off";
  std::string reference_autocast = "on";
  bool no_end_to_end = false;
  int threads = 0;
  std::optional<std::uint64_t> seed;
};

}  // namespace

Command add_bench(CLI::App& app, LogFlags& log) {
  auto flags = std::make_shared<BenchFlags>();
  BenchOptions& o = flags->options;
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure network calls/s, tuples/s end to end, peak memory and FLOP utilisation");
  cmd->add_option("--models", flags->models, "Models directory (default: $COPGEN_MODELS, else installed)");
  cmd->add_option("--devices", o.devices, "Devices, comma-separated: auto, cpu, cuda, cuda:N")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--precisions", flags->precisions, "Precisions, comma-separated: auto, fp32, bf16, fp16")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--batch-sizes", o.batch_sizes, "Samples per network call, comma-separated")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--warmup", o.warmup, "Untimed network calls before timing each batch size")->capture_default_str();
  cmd->add_option("--repeat", o.repeat, "Timed network calls per batch size")->capture_default_str();
  cmd->add_option("--steps", o.sampling.sampler.steps, "Network calls of the end-to-end translation")->capture_default_str();
  cmd->add_flag("--no-end-to-end", flags->no_end_to_end, "Time network calls only");
  cmd->add_option("--cuda-graphs", flags->cuda_graphs, "on or off: replay the backbone call as a CUDA graph")
      ->capture_default_str();
  cmd->add_option("--ae-precision", flags->ae_precision, kAePrecisionHelp)->capture_default_str();
  cmd->add_option("--tf32", flags->tf32, kTf32Help)->capture_default_str();
  cmd->add_option("--peak-tflops", o.peak_tflops,
                  "The device's peak TFLOP/s at the precision measured, for the utilisation column");
  add_seed_option(cmd, flags->seed, "Seed of the random latents and draws, 0 to 2^64-1 (default: 0)");
  cmd->add_option("--threads", flags->threads, "CPU threads (default: every core)");
  cmd->add_flag("--compare-reference", o.compare_reference,
                "Also run scripts/research/reference_pipeline.py on the same models and report copgen's speed as a ratio");
  cmd->add_option("--python", o.python, "Interpreter for the reference (default: /usr/bin/python3, else python3)");
  cmd->add_option("--reference-script", o.reference_script,
                  "The reference pipeline script (default: installed, else the source tree's)");
  cmd->add_option("--reference-autocast", flags->reference_autocast,
                  "on or off: the reference runs bf16/fp16 under torch.autocast (as its code does) or casts "
                  "its modules (as copgen does)")
      ->capture_default_str();
  cmd->add_option("--json", flags->json, "Also write the figures as JSON to FILE")->check(kOutputPath);
  cmd->add_option("--svg", flags->svg,
                  "Also draw the figures as an SVG chart in FILE: calls/s (and MFU with --peak-tflops) per "
                  "precision and batch size, the reference beside with --compare-reference")
      ->check(kOutputPath);
  add_log_flags(cmd, log);
  cmd->footer(kExitCodesAndModels);

  return {cmd, [flags]() {
            BenchOptions& o = flags->options;
            o.models_dir = flags->models.empty() ? default_models_dir() : flags->models;
            o.sampling.seed = flags->seed;
            o.precisions.clear();
            for (const std::string& p : flags->precisions) o.precisions.push_back(parse_precision(p));
            o.end_to_end = !flags->no_end_to_end;
            o.cuda_graphs = parse_on_off(flags->cuda_graphs, "--cuda-graphs");
            o.ae_precision = parse_precision(flags->ae_precision, "--ae-precision");
            o.tf32 = parse_on_off(flags->tf32, "--tf32");
            o.reference_autocast = parse_on_off(flags->reference_autocast, "--reference-autocast");
            if (flags->threads < 0) {
              throw UsageError("--threads: must be positive, got " + std::to_string(flags->threads));
            }
            validate(o);
            // the figures take minutes to measure: check where they go first
            OutputGate gate({o.models_dir}, true);  // never the models it measures
            if (!flags->json.empty()) gate.add_replaced(flags->json, FileKind::Json, "--json");
            if (!flags->svg.empty()) gate.add_replaced(flags->svg, FileKind::Report, "--svg");
            configure_threads(flags->threads);
            const BenchReport r = run_bench(o, [](const std::string& line) { spdlog::info("{}", line); });
            std::cout << format_bench_table(r) << std::flush;
            if (!flags->json.empty()) {
              write_text_atomically(flags->json, bench_to_json(r).dump(2) + "\n", "--json");
              spdlog::info("wrote {}", flags->json);
            }
            if (!flags->svg.empty()) {
              write_text_atomically(flags->svg, bench_svg(r), "--svg");
              spdlog::info("wrote {}", flags->svg);
            }
            return 0;
          }};
}

}  // namespace copgen::cli
