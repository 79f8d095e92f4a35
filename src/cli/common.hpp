// Pieces every copgen subcommand shares: the command record main() dispatches on, the
// logging flags, and the model/sampler flags of the commands that sample.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "copgen/models.hpp"
#include "copgen/pipeline.hpp"

namespace copgen::cli {

inline const std::string kExitCodes =
    "Exit codes: 0 success, 1 other failure, 2 usage error, 3 input data error,\n"
    "4 model error, 5 output error, 130 interrupted (SIGINT/SIGTERM).";
// The footer of copgen and of the commands that load models (--models).
inline const std::string kExitCodesAndModels =
    kExitCodes + "\nModels: --models DIR, else $COPGEN_MODELS, else the installed models directory.";

// Help of the precision flags, shared by the sampling commands and bench.
inline constexpr const char* kPrecisionHelp =
    "The backbone's precision: auto, fp32, bf16 or fp16. auto: fp32 on the CPU; on CUDA bf16 where the GPU "
    "computes it natively (compute capability >= 8.0), else fp16. bf16 is accepted on the CPU (fast with "
    "AMX/AVX512-BF16); fp16 is CUDA only";
inline constexpr const char* kAePrecisionHelp =
    "The autoencoder's precision: auto, fp32, bf16 or fp16. auto: fp32 (bf16 moves decoded pixels by "
    "several grey levels); fp16 is CUDA only";
inline constexpr const char* kTf32Help =
    "on or off: TF32 for float32 matrix products and convolutions on CUDA (faster, about 3 decimal digits; "
    "off keeps float32 exact); no effect on the CPU";

// Every flag naming a file or folder copgen writes takes it: an empty value ("--stac-out
// ''") is a usage error, never a flag silently left out.
extern const CLI::Validator kOutputPath;

// "on" -> true, "off" -> false; throws UsageError naming `flag` otherwise.
bool parse_on_off(const std::string& value, const std::string& flag);

// Logging flags, added to every subcommand.
struct LogFlags {
  int verbosity = 0;
  bool quiet = false;
};

// A subcommand: its CLI11 app and what runs it once parsed. run() throws copgen::Error
// (mapped to exit codes by main) and returns 0 on success.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

void add_log_flags(CLI::App* cmd, LogFlags& flags);

// Model and sampler flags of the commands that sample (translate, generate, eval, ...).
struct SamplingFlags {
  std::string models;
  std::string device = "auto";
  std::string precision = "auto";
  std::string solver = "dpm-solver-fast";
  std::string time_grid = "time-uniform";
  std::optional<std::uint64_t> seed;
  int threads = 0;
  std::string cuda_graphs = "on";
  std::string ae_precision = "auto";
  std::string tf32 = "off";
};
void add_sampling_flags(CLI::App* cmd, SamplingFlags& f, SamplingOptions& o);
// Converts the flag strings into `o` and `mo`; throws UsageError naming the flag.
void apply_sampling_flags(const SamplingFlags& f, SamplingOptions& o, ModelOptions& mo);
// -o/--output (required), --save-latents (with `latents_help`), --format, --overwrite, --preview.
CLI::Option* add_output_flags(CLI::App* cmd, OutputOptions& o, const std::string& latents_help);
// --seed: a whole number from 0 to 2^64 - 1, parsed strictly ("-1", "1e23", "3.5" and
// values past 2^64 - 1 are usage errors, never wrapped or clamped).
CLI::Option* add_seed_option(CLI::App* cmd, std::optional<std::uint64_t>& seed, const std::string& help);
// --models, else $COPGEN_MODELS, else the installed directory.
std::string models_dir(const SamplingFlags& f);

// A region of interest, as gdal_translate takes it: --projwin ULX ULY LRX LRY (with
// --projwin-srs) or --srcwin XOFF YOFF XSIZE YSIZE, in the pixels of the target grid.
struct WindowFlags {
  std::vector<double> projwin;
  std::vector<int> srcwin;
  std::string projwin_srs;
};
void add_window_flags(CLI::App* cmd, WindowFlags& f, const std::string& group);
// Into the scene options (validated with them).
void apply_window_flags(const WindowFlags& f, SceneOptions& s);

// --s2-offset auto|on|off, and --l2a-offset, its deprecated alias of "on".
struct S2OffsetFlags {
  std::string mode = "auto";
  bool l2a_offset = false;
};
void add_s2_offset_flags(CLI::App* cmd, S2OffsetFlags& f, const std::string& group);
// Into s.s2_offset; UsageError naming both flags for --l2a-offset with --s2-offset off.
void apply_s2_offset_flags(const S2OffsetFlags& f, SceneOptions& s);

// The subcommands; each file src/cli/cmd_<name>.cpp defines one.
Command add_translate(CLI::App& app, LogFlags& log);
Command add_generate(CLI::App& app, LogFlags& log);
Command add_metrics(CLI::App& app, LogFlags& log);
Command add_eval(CLI::App& app, LogFlags& log);
Command add_bench(CLI::App& app, LogFlags& log);
Command add_render(CLI::App& app, LogFlags& log);
Command add_info(CLI::App& app, LogFlags& log);

}  // namespace copgen::cli
