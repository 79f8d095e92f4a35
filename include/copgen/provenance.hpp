// Provenance: the metadata items every output of a sampling run carries, so that an image
// says which copgen, which models and which settings made it; and the system a run ran
// on (SystemInfo: `copgen info`, `copgen --version --verbose`, the "environment" object of
// every JSON report). translate, generate, scenes
// and batch write them into each image (raster_io's WriteOptions::metadata, a RasterSink's
// SinkSpec), and a STAC item of the outputs (stac.hpp) reads them back.
//
//   auto meta = copgen::run_metadata(o.sampling, 1, models, seed, "translate", given, roles);
//   meta["COPGEN_SEED"];     // "42"
//   meta["COPGEN_SOLVER"];   // "dpm-solver-fast"
//   std::cout << copgen::format_system_info(copgen::system_info());   // what `copgen info` prints
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "copgen/conditioning.hpp"
#include "copgen/cuda.hpp"
#include "copgen/modality.hpp"
#include "copgen/models.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/tuples.hpp"

namespace copgen {

// The provenance items of a run's outputs: COPGEN_VERSION, the models (COPGEN_MODELS_SHA256,
// COPGEN_MODELS_SOURCE), `mode` ("translate", "generate", "batch"), the seed, the sampling
// settings of `s` (solver, steps, time grid, guidance scale, batch size, conditioning
// latent), the roles (COPGEN_GIVEN: `given_mods`, COPGEN_GENERATED and COPGEN_UNUSED: `roles`),
// `samples`, and the models' precisions (Models::settings_metadata).
std::map<std::string, std::string> run_metadata(const SamplingOptions& s, int samples, const Models& models,
                                                std::uint64_t seed, const std::string& mode,
                                                const std::vector<Modality>& given_mods, const Roles& roles);

// One visible GPU and the precision --precision auto picks on it.
struct GpuInfo {
  GpuDescription gpu;
  std::string auto_precision;  // auto_precision(device_caps(cuda:N)): "bf16" or "fp16"
};

// The facts a bug report needs: which copgen, on which libraries, devices and models.
struct SystemInfo {
  std::string copgen_version;  // kVersion
  std::string git_commit;      // of the source tree built, "-dirty" appended for uncommitted changes; "unknown" outside git
  std::string torch_version;   // TORCH_VERSION
  CudaDescription cuda;        // describe_cuda(): compiled in, runtime, driver, cuDNN, GPUs
  std::vector<GpuInfo> gpus;   // cuda.gpus with the precision auto picks on each
  std::string cpu_auto_precision;  // what --precision auto picks on the CPU
  GdalDescription gdal;        // describe_gdal(): version, COG, JPEG 2000, HTTP
  std::string blas;            // the library providing sgemm_ (blas_library()), "" if none
  std::string torch_blas;      // the BLAS LibTorch was built against (torch_blas_info())
  std::vector<std::string> blas_loaded;  // BLAS/LAPACK libraries mapped into the process
  int cpu_cores = 0;           // std::thread::hardware_concurrency()
  int torch_threads = 0;       // torch's intra-op threads now
  ModelsDirChoice models;      // the models directory looked at and why
  bool models_found = false;   // it holds a readable, valid copgen.json
  std::string models_sha256;   // the manifest's SHA-256 ("the models hash" of provenance)
  std::string models_source;   // the backbone's source (checkpoint, or "random (seed N)")
  std::string models_problem;  // why none was found (read_manifest's message), else ""
};

// Gathers SystemInfo for the models directory `models` (ModelsDirChoice::origin says why it
// was looked at). Never throws for a missing models directory, a missing GPU or driver:
// those are facts to report.
SystemInfo system_info(const ModelsDirChoice& models);
// For the models directory `models_flag` (a --models value; "" resolves it as the commands
// do: $COPGEN_MODELS, else the installed one).
SystemInfo system_info(const std::string& models_flag = "");
// The origin of the models directory in a report's environment: the one the run used.
inline constexpr const char* kRunModelsOrigin = "run";
// As JSON (keys documented in README, "Reporting a bug: copgen info").
nlohmann::json to_json(const SystemInfo& info);
// The human-readable lines `copgen info` prints ("key: value", one fact per line).
std::string format_system_info(const SystemInfo& info);
// CUDA's version numbers as text: 12040 -> "12.4"; cuDNN's 90100 -> "9.1.0", 8907 -> "8.9.7".
std::string cuda_version_text(int version);
std::string cudnn_version_text(long version);

}  // namespace copgen
