#include "copgen/provenance.hpp"

#include <cstdio>
#include <thread>

#include <torch/version.h>

#include "copgen/build_commit.hpp"
#include "copgen/error.hpp"
#include "copgen/manifest.hpp"
#include "copgen/runtime.hpp"
#include "copgen/sampler.hpp"
#include "copgen/version.hpp"

namespace copgen {

std::map<std::string, std::string> run_metadata(const SamplingOptions& s, int samples, const Models& models,
                                                std::uint64_t seed, const std::string& mode,
                                                const std::vector<Modality>& given_mods, const Roles& roles) {
  const std::vector<Modality>& generated = roles.generated;
  std::map<std::string, std::string> meta = {
      {"COPGEN_VERSION", kVersion},
      {"COPGEN_MODELS_SHA256", models.manifest().sha256},
      {"COPGEN_MODELS_SOURCE", models.manifest().backbone.source},
      {"COPGEN_MODE", mode},
      {"COPGEN_SEED", std::to_string(seed)},
      {"COPGEN_STEPS", std::to_string(s.sampler.steps)},
      {"COPGEN_SOLVER", solver_name(s.sampler.solver)},
      {"COPGEN_TIME_GRID", time_grid_name(s.sampler.grid)},
      {"COPGEN_GUIDANCE_SCALE", std::to_string(s.guidance.scale)},
      {"COPGEN_BATCH_SIZE", std::to_string(s.batch_size)},
      {"COPGEN_GIVEN", given_mods.empty() ? "none" : join_modalities(given_mods)},
      {"COPGEN_GENERATED", join_modalities(generated)},
      {"COPGEN_UNUSED", roles.unused.empty() ? "none" : join_modalities(roles.unused) + " (noise at t=N)"},
      {"COPGEN_COND_LATENT", cond_latent_name(s.cond_latent)},
      {"COPGEN_SAMPLES", std::to_string(samples)},
  };
  const auto settings = models.settings_metadata();  // precisions and TF32
  meta.insert(settings.begin(), settings.end());
  return meta;
}

std::string cuda_version_text(int version) {
  if (version <= 0) return "";
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

std::string cudnn_version_text(long version) {
  if (version <= 0) return "";
  // cuDNN 9 and later: major * 10000 + minor * 100 + patch; before: major * 1000 + ...
  const long major_unit = version >= 90000 ? 10000 : 1000;
  return std::to_string(version / major_unit) + "." + std::to_string((version % major_unit) / 100) + "." +
         std::to_string(version % 100);
}

SystemInfo system_info(const std::string& models_flag) { return system_info(choose_models_dir(models_flag)); }

SystemInfo system_info(const ModelsDirChoice& models) {
  SystemInfo info;
  info.copgen_version = kVersion;
  info.git_commit = kGitCommit;
  info.torch_version = TORCH_VERSION;
  info.cuda = describe_cuda();
  for (const GpuDescription& gpu : info.cuda.gpus) {
    const Precision p = auto_precision(device_caps(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(gpu.index))));
    info.gpus.push_back({gpu, precision_name(p)});
  }
  info.cpu_auto_precision = precision_name(auto_precision(device_caps(torch::Device(torch::kCPU))));
  info.gdal = describe_gdal();
  info.blas = blas_library();
  info.torch_blas = torch_blas_info();
  info.blas_loaded = loaded_blas_libraries();
  info.cpu_cores = static_cast<int>(std::thread::hardware_concurrency());
  info.torch_threads = torch::get_num_threads();
  info.models = models;
  try {
    const Manifest m = read_manifest(info.models.dir);
    info.models_found = true;
    info.models_sha256 = m.sha256;
    info.models_source = m.backbone.source;
  } catch (const std::exception& e) {  // a ModelError: no such folder, no copgen.json, a malformed one
    info.models_problem = e.what();
  }
  return info;
}

namespace {

// A version, or what stands for a missing one.
std::string or_else(const std::string& text, const std::string& missing) { return text.empty() ? missing : text; }

std::string cuda_fact(const SystemInfo& i, int version, const char* missing) {
  if (!i.cuda.compiled) return "not compiled in";
  return or_else(cuda_version_text(version), missing);
}

std::string cudnn_fact(const SystemInfo& i) {
  if (!i.cuda.compiled) return "not compiled in";
  return or_else(cudnn_version_text(i.cuda.cudnn_version), "none");
}

std::string gib(std::int64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

nlohmann::json to_json(const SystemInfo& i) {
  using nlohmann::json;
  json gpus = json::array();
  for (const GpuInfo& g : i.gpus) {
    gpus.push_back({{"index", g.gpu.index},
                    {"name", g.gpu.name},
                    {"compute_capability", std::to_string(g.gpu.cc_major) + "." + std::to_string(g.gpu.cc_minor)},
                    {"memory_bytes", g.gpu.memory_bytes},
                    {"auto_precision", g.auto_precision}});
  }
  const auto version_or_null = [](const std::string& v) { return v.empty() ? json(nullptr) : json(v); };
  return {{"copgen_version", i.copgen_version},
          {"git_commit", i.git_commit},
          {"torch_version", i.torch_version},
          {"cuda",
           {{"compiled", i.cuda.compiled},
            {"runtime", version_or_null(cuda_version_text(i.cuda.runtime_version))},
            {"driver", version_or_null(cuda_version_text(i.cuda.driver_version))},
            {"cudnn", version_or_null(cudnn_version_text(i.cuda.cudnn_version))}}},
          {"gpus", gpus},
          {"auto_precision", {{"cpu", i.cpu_auto_precision}}},
          {"gdal",
           {{"version", i.gdal.version},
            {"cog", i.gdal.cog},
            {"jpeg2000", i.gdal.jpeg2000_drivers},
            {"http", i.gdal.http}}},
          {"blas", {{"library", version_or_null(i.blas)}, {"torch_built_with", version_or_null(i.torch_blas)}, {"loaded", i.blas_loaded}}},
          {"cpu", {{"cores", i.cpu_cores}, {"torch_threads", i.torch_threads}}},
          {"models",
           {{"dir", i.models.dir},
            {"origin", i.models.origin},
            {"found", i.models_found},
            {"manifest_sha256", i.models_found ? json(i.models_sha256) : json(nullptr)},
            {"source", i.models_found ? json(i.models_source) : json(nullptr)},
            {"problem", i.models_found ? json(nullptr) : json(i.models_problem)}}}};
}

std::string format_system_info(const SystemInfo& i) {
  std::string out;
  const auto line = [&out](const std::string& key, const std::string& value) { out += key + ": " + value + "\n"; };
  line("copgen", i.copgen_version);
  line("commit", i.git_commit);
  line("libtorch", i.torch_version);
  line("cuda compiled in", i.cuda.compiled ? "yes" : "no");
  line("cuda runtime", cuda_fact(i, i.cuda.runtime_version, "unknown"));
  line("cuda driver", cuda_fact(i, i.cuda.driver_version, "no driver"));
  line("cudnn", cudnn_fact(i));
  if (i.gpus.empty()) line("gpus", "none");
  for (const GpuInfo& g : i.gpus) {
    line("gpu " + std::to_string(g.gpu.index), g.gpu.name + ", compute capability " + std::to_string(g.gpu.cc_major) +
                                                   "." + std::to_string(g.gpu.cc_minor) + ", " +
                                                   gib(g.gpu.memory_bytes) + ", precision auto " + g.auto_precision);
  }
  line("precision auto on cpu", i.cpu_auto_precision);
  line("gdal", i.gdal.version);
  line("gdal cog", i.gdal.cog ? "yes" : "no");
  line("gdal jpeg2000", i.gdal.jpeg2000_drivers.empty() ? "no" : "yes (" + join(i.gdal.jpeg2000_drivers, ", ") + ")");
  line("gdal http (/vsicurl/)", i.gdal.http ? "yes" : "no");
  line("blas", or_else(i.blas, "none resolved (torch's own kernels)"));
  line("blas torch built with", or_else(i.torch_blas, "unknown"));
  line("blas loaded", i.blas_loaded.empty() ? "none" : join(i.blas_loaded, ", "));
  line("cpu cores", std::to_string(i.cpu_cores));
  line("torch threads", std::to_string(i.torch_threads));
  if (i.models_found) {
    line("models dir", i.models.dir + " (" + i.models.origin + ")");
    line("models manifest sha256", i.models_sha256);
    line("models source", i.models_source);
  } else {
    line("models dir", "none found (looked in " + i.models.dir + ", " + i.models.origin + ": " + i.models_problem + ")");
  }
  return out;
}

}  // namespace copgen
