// copgen info, copgen --version --verbose and the "environment" object of the JSON reports:
// every fact that this test build can know is checked exactly against what the build and
// the libraries say (the version, LibTorch, CUDA compiled in or not, GDAL, the tiny models).
#include "catch_torch.hpp"

#include <regex>
#include <sstream>
#include <thread>

#include <gdal.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>
#include <torch/version.h>

#include "copgen/cuda.hpp"
#include "copgen/models.hpp"
#include "copgen/provenance.hpp"
#include "copgen/version.hpp"
#include "support.hpp"

using namespace copgen::test;
using nlohmann::json;

namespace {

#ifdef COPGEN_WITH_CUDA
constexpr bool kCudaBuild = true;
#else
constexpr bool kCudaBuild = false;
#endif

// stdout of `copgen ARGS` with the tiny test models (the log, on stderr, left out).
CommandResult copgen_stdout(const std::string& args, const std::string& env = models_env()) {
  return run_command(env + bin() + " " + args + " 2>/dev/null");
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream s(text);
  for (std::string line; std::getline(s, line);) out.push_back(line);
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

std::string cpu_auto_precision() {
  return copgen::precision_name(copgen::auto_precision(copgen::device_caps(torch::Device(torch::kCPU))));
}

std::string gdal_version() { return GDALVersionInfo("RELEASE_NAME"); }

}  // namespace

TEST_CASE("cli info --json: the facts of this build and of the tiny models", "[info][cli]") {
  const CommandResult r = copgen_stdout("info --json");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(r.output);
  CHECK(j["copgen_version"] == copgen::kVersion);
  CHECK(std::regex_match(j["git_commit"].get<std::string>(), std::regex("[0-9a-f]{40}(-dirty)?|unknown")));
  CHECK(j["torch_version"] == TORCH_VERSION);
  CHECK(j["cuda"]["compiled"] == kCudaBuild);
  const auto gpus = static_cast<std::size_t>(torch::cuda::device_count());
  CHECK(j["gpus"].size() == gpus);
  if (!kCudaBuild) {
    for (const char* k : {"runtime", "driver", "cudnn"}) CHECK(j["cuda"][k].is_null());
  } else {
    CHECK(std::regex_match(j["cuda"]["runtime"].get<std::string>(), std::regex("[0-9]+\\.[0-9]+")));
    if (gpus == 0) CHECK(j["gpus"] == json::array());
  }
  CHECK(j["auto_precision"]["cpu"] == cpu_auto_precision());
  CHECK(j["auto_precision"]["cpu"] == "fp32");
  CHECK(j["gdal"]["version"] == gdal_version());
  CHECK(j["gdal"]["cog"] == true);
  CHECK(j["gdal"]["http"].is_boolean());
  CHECK(j["gdal"]["jpeg2000"].is_array());
  CHECK(j["cpu"]["cores"] == static_cast<int>(std::thread::hardware_concurrency()));
  CHECK(j["cpu"]["torch_threads"].get<int>() >= 1);
  CHECK(j["blas"]["loaded"].is_array());
  const copgen::Models& tiny = tiny_models();
  CHECK(j["models"]["dir"] == tiny.directory());
  CHECK(j["models"]["origin"] == "COPGEN_MODELS");
  CHECK(j["models"]["found"] == true);
  CHECK(j["models"]["manifest_sha256"] == tiny.manifest().sha256);
  CHECK(j["models"]["source"] == tiny.manifest().backbone.source);
  CHECK(j["models"]["problem"].is_null());
}

TEST_CASE("cli info: the same facts as text, and in --version --verbose", "[info][cli]") {
  const CommandResult r = copgen_stdout("info");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const copgen::Models& tiny = tiny_models();
  CHECK(has_line(r.output, std::string("copgen: ") + copgen::kVersion));
  CHECK(has_line(r.output, std::string("libtorch: ") + TORCH_VERSION));
  CHECK(has_line(r.output, std::string("cuda compiled in: ") + (kCudaBuild ? "yes" : "no")));
  if (!kCudaBuild) {
    CHECK(has_line(r.output, "cuda runtime: not compiled in"));
    CHECK(has_line(r.output, "cuda driver: not compiled in"));
    CHECK(has_line(r.output, "cudnn: not compiled in"));
  }
  if (torch::cuda::device_count() == 0) CHECK(has_line(r.output, "gpus: none"));
  CHECK(has_line(r.output, "precision auto on cpu: " + cpu_auto_precision()));
  CHECK(has_line(r.output, "gdal: " + gdal_version()));
  CHECK(has_line(r.output, "gdal cog: yes"));
  CHECK(has_line(r.output, "models dir: " + tiny.directory() + " (COPGEN_MODELS)"));
  CHECK(has_line(r.output, "models manifest sha256: " + tiny.manifest().sha256));

  // --version --verbose: the version line, then exactly what `copgen info` prints
  for (const std::string args : {"--version --verbose", "--verbose --version", "--version -v"}) {
    INFO(args);
    const CommandResult v = copgen_stdout(args);
    REQUIRE(v.exit_code == 0);
    CHECK(v.output == std::string("copgen ") + copgen::kVersion + "\n" + r.output);
  }
  // plain --version is unchanged
  const CommandResult plain = copgen_stdout("--version");
  CHECK(plain.exit_code == 0);
  CHECK(plain.output == std::string("copgen ") + copgen::kVersion + "\n");
}

TEST_CASE("cli info: no models directory is a fact, not a failure", "[info][cli]") {
  TempDir tmp;
  const std::string missing = tmp.file("no-models");
  SECTION("from COPGEN_MODELS") {
    const CommandResult r = copgen_stdout("info", "COPGEN_MODELS=" + quote(missing) + " ");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("models dir: none found (looked in " + missing + ", COPGEN_MODELS: ") != std::string::npos);
    CHECK(r.output.find("models manifest sha256") == std::string::npos);
  }
  SECTION("from --models, as JSON") {
    const CommandResult r = copgen_stdout("info --json --models " + quote(missing));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const json j = json::parse(r.output);
    CHECK(j["models"]["dir"] == missing);
    CHECK(j["models"]["origin"] == "--models");
    CHECK(j["models"]["found"] == false);
    CHECK(j["models"]["manifest_sha256"].is_null());
    CHECK_THAT(j["models"]["problem"].get<std::string>(), Catch::Contains(missing));
  }
  SECTION("the installed default, with COPGEN_MODELS unset") {
    const CommandResult r = copgen_stdout("info --json", "env -u COPGEN_MODELS ");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(json::parse(r.output)["models"]["origin"] == "installed default");
    CHECK(json::parse(r.output)["models"]["dir"] == copgen::kDefaultModelsDir);
  }
}

TEST_CASE("cli bench --json carries the environment object", "[info][cli][bench]") {
  TempDir tmp;
  const std::string out = tmp.file("bench.json");
  const CommandResult r = run_copgen("bench --devices cpu --repeat 1 --warmup 1 --steps 2 --batch-sizes 1 "
                                     "--no-end-to-end --threads 1 --json " + quote(out));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const json env = json::parse(read_file_bytes(out))["environment"];
  REQUIRE(env.is_object());
  CHECK(env["copgen_version"] == copgen::kVersion);
  CHECK(env["torch_version"] == TORCH_VERSION);
  CHECK(env["cuda"]["compiled"] == kCudaBuild);
  CHECK(env["gdal"]["version"] == gdal_version());
  CHECK(env["models"]["dir"] == tiny_models().directory());
  CHECK(env["models"]["manifest_sha256"] == tiny_models().manifest().sha256);
  CHECK(env["models"]["origin"] == "run");
  // the info command's facts, but for torch_threads (bench sets --threads 1 before it
  // looks) and the models' origin (the run's models, here found through COPGEN_MODELS)
  const CommandResult info = copgen_stdout("info --json");
  REQUIRE(info.exit_code == 0);
  json expected = json::parse(info.output);
  json got = env;
  for (json* j : {&expected, &got}) {
    (*j)["cpu"].erase("torch_threads");
    (*j)["models"].erase("origin");
  }
  CHECK(got == expected);
}

TEST_CASE("info: CUDA and cuDNN version numbers as text", "[info]") {
  CHECK(copgen::cuda_version_text(12040) == "12.4");
  CHECK(copgen::cuda_version_text(13000) == "13.0");
  CHECK(copgen::cuda_version_text(11080) == "11.8");
  CHECK(copgen::cuda_version_text(0).empty());
  CHECK(copgen::cudnn_version_text(91002) == "9.10.2");
  CHECK(copgen::cudnn_version_text(90100) == "9.1.0");
  CHECK(copgen::cudnn_version_text(8907) == "8.9.7");
  CHECK(copgen::cudnn_version_text(0).empty());
}
