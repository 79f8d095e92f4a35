// Loading the tiny models through their manifest, its failure modes, and parity of the
// TorchScript modules run from C++ with the export script's eager Python modules.
#include "catch_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/npy.hpp"
#include "copgen/sha256.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

std::string parity(const std::string& name) { return std::string(COPGEN_TEST_PARITY) + "/" + name; }

Models tiny() {
  ModelOptions o;
  o.device = "cpu";
  return Models::load(COPGEN_TEST_MODELS, o);
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// A writable copy of the tiny models directory.
std::string copy_models(const test::TempDir& dir) {
  const std::string dst = dir.file("models");
  fs::copy(COPGEN_TEST_MODELS, dst, fs::copy_options::recursive);
  return dst;
}

std::string load_error(const std::string& dir) {
  try {
    ModelOptions o;
    o.device = "cpu";
    Models::load(dir, o);
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

void edit_manifest(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  const std::string path = dir + "/copgen.json";
  auto j = nlohmann::json::parse(test::read_file_bytes(path));
  edit(j);
  std::ofstream(path) << j.dump(2);
}

}  // namespace

TEST_CASE("models: the tiny models load and report their manifest", "[models]") {
  Models m = tiny();
  CHECK(m.manifest().backbone.embed_dim == 64);
  CHECK(m.latent_channels() == 4);
  CHECK(m.latent_size() == 32);
  CHECK(m.image_size() == 256);
  CHECK(m.device().is_cpu());
  CHECK(m.dtype() == torch::kFloat32);
  CHECK(m.schedule().num_timesteps() == 1000);
}

TEST_CASE("models: backbone and autoencoder match the Python modules within 1e-5", "[models][parity]") {
  Models m = tiny();
  const auto z = read_npy(parity("backbone_z.npy"));
  const auto t = read_npy(parity("backbone_t.npy"));
  const auto eps = m.predict_noise(z, t);
  const auto want = read_npy(parity("backbone_out.npy"));
  REQUIRE(eps.sizes() == want.sizes());
  CHECK(max_abs(eps, want) < 1e-5);

  const auto x = read_npy(parity("ae_x.npy"));
  const auto moments = m.encode_moments(x);
  const auto want_m = read_npy(parity("ae_moments.npy"));
  REQUIRE(moments.sizes() == want_m.sizes());
  CHECK(max_abs(moments, want_m) < 1e-5);

  const auto lat = read_npy(parity("ae_z.npy"));
  const auto img = m.decode(lat);
  const auto want_img = read_npy(parity("ae_decoded.npy"));
  REQUIRE(img.sizes() == want_img.sizes());
  CHECK(max_abs(img, want_img) < 1e-5);
}

TEST_CASE("models: a seeded CPU generator draws what torch.manual_seed + torch.randn draw", "[models][parity]") {
  at::Generator gen = at::detail::createCPUGenerator(1234);
  const auto a = torch::randn({3, 2, 4, 32, 32}, gen, torch::kFloat32);
  const auto b = torch::randn({2, 4, 32, 32}, gen, torch::kFloat32);
  CHECK(torch::equal(a, read_npy(parity("randn_1234_a.npy"))));
  CHECK(torch::equal(b, read_npy(parity("randn_1234_b.npy"))));
}

TEST_CASE("models: the time token is the raw sinusoidal embedding - cosines first", "[models][parity]") {
  const auto emb = read_npy(parity("timestep_embedding.npy"));  // [4, D] for t = 0, 1, 500.5, 1000
  const int64_t d = emb.size(1), half = d / 2;
  const double ts[] = {0.0, 1.0, 500.5, 1000.0};
  for (int r = 0; r < 4; ++r) {
    for (int64_t i = 0; i < half; ++i) {
      const double f = std::exp(-std::log(10000.0) * static_cast<double>(i) / static_cast<double>(half));
      CHECK(emb[r][i].item<double>() == Approx(std::cos(ts[r] * f)).margin(2e-4));
      CHECK(emb[r][half + i].item<double>() == Approx(std::sin(ts[r] * f)).margin(2e-4));
    }
  }
}

TEST_CASE("models: load failures are model errors naming the culprit", "[models]") {
  test::TempDir tmp;
  SECTION("missing directory") {
    CHECK_THAT(load_error(tmp.file("nope")), Catch::Contains("nope") && Catch::Contains("not found"));
  }
  SECTION("missing manifest") {
    const std::string d = copy_models(tmp);
    fs::remove(d + "/copgen.json");
    CHECK_THAT(load_error(d), Catch::Contains("copgen.json"));
  }
  SECTION("corrupt manifest") {
    const std::string d = copy_models(tmp);
    std::ofstream(d + "/copgen.json") << "{ \"format\": \"copgen-models\", ";
    CHECK_THAT(load_error(d), Catch::Contains("copgen.json") && Catch::Contains("not valid JSON"));
  }
  SECTION("checksum mismatch") {
    const std::string d = copy_models(tmp);
    std::ofstream(d + "/backbone.pt", std::ios::app | std::ios::binary) << "x";
    CHECK_THAT(load_error(d), Catch::Contains("backbone.pt") && Catch::Contains("checksum mismatch"));
  }
  SECTION("missing module file") {
    const std::string d = copy_models(tmp);
    fs::remove(d + "/autoencoder.pt");
    CHECK_THAT(load_error(d), Catch::Contains("autoencoder.pt") && Catch::Contains("missing"));
  }
  SECTION("a module with the wrong interface") {
    const std::string d = copy_models(tmp);
    // the autoencoder file where the backbone should be, with a matching checksum
    fs::copy_file(d + "/autoencoder.pt", d + "/backbone.pt", fs::copy_options::overwrite_existing);
    edit_manifest(d, [&](nlohmann::json& j) { j["backbone"]["sha256"] = sha256_file(d + "/backbone.pt"); });
    CHECK_THAT(load_error(d), Catch::Contains("backbone.pt") && Catch::Contains("forward"));
  }
  SECTION("dimensions that disagree between manifest and file") {
    const std::string d = copy_models(tmp);
    edit_manifest(d, [](nlohmann::json& j) { j["backbone"]["depth"] = 6; });
    CHECK_THAT(load_error(d), Catch::Contains("backbone.pt") && Catch::Contains("depth is 4") &&
                                  Catch::Contains("manifest says 6"));
  }
  SECTION("a file that is not TorchScript") {
    const std::string d = copy_models(tmp);
    std::ofstream(d + "/autoencoder.pt", std::ios::trunc) << "not a zip";
    edit_manifest(d, [&](nlohmann::json& j) { j["autoencoder"]["sha256"] = sha256_file(d + "/autoencoder.pt"); });
    CHECK_THAT(load_error(d), Catch::Contains("autoencoder.pt") && Catch::Contains("TorchScript"));
  }
}

TEST_CASE("models: device and precision flags are checked", "[models]") {
  CHECK(resolve_device("cpu").is_cpu());
  CHECK_THROWS_WITH(resolve_device("tpu"), Catch::Contains("--device") && Catch::Contains("tpu"));
  CHECK_THROWS_WITH(resolve_device("cuda:x"), Catch::Contains("--device"));
  if (!torch::cuda::is_available()) {
    CHECK_THROWS_WITH(resolve_device("cuda"), Catch::Contains("no CUDA device"));
    CHECK(resolve_device("auto").is_cpu());
  }
  CHECK(resolve_precision(Precision::Auto, torch::Device(torch::kCPU)) == torch::kFloat32);
  CHECK(resolve_precision(Precision::Bf16, torch::Device(torch::kCPU)) == torch::kBFloat16);
  CHECK_THROWS_AS(resolve_precision(Precision::Fp16, torch::Device(torch::kCPU)), UsageError);
  CHECK_THROWS_WITH(parse_precision("fp8"), Catch::Contains("--precision"));
}

TEST_CASE("models: the weights are resident once, in one precision", "[models][memory]") {
  ModelOptions o;
  o.device = "cpu";
  o.precision = Precision::Fp32;
  Models fp32 = Models::load(COPGEN_TEST_MODELS, o);
  o.precision = Precision::Bf16;
  Models bf16 = Models::load(COPGEN_TEST_MODELS, o);
  const auto bb32 = fp32.weight_bytes(false);
  const auto bb16 = bf16.weight_bytes(false);
  // one dtype each: the cast to bf16 left no fp32 copy behind
  REQUIRE(bb32.size() == 1);
  REQUIRE(bb16.size() == 1);
  CHECK(bb32.begin()->first == "fp32 cpu");
  CHECK(bb16.begin()->first == "bf16 cpu");
  CHECK(bb16.begin()->second * 2 == bb32.begin()->second);
  CHECK(bb32.begin()->second >= 4 * fp32.manifest().backbone.parameters);
  // the autoencoder stays fp32 (--ae-precision auto), once
  const auto ae = bf16.weight_bytes(true);
  REQUIRE(ae.size() == 1);
  CHECK(ae.begin()->first == "fp32 cpu");
  CHECK(ae.begin()->second == fp32.weight_bytes(true).begin()->second);
  CHECK(ae.begin()->second >= 4 * fp32.manifest().autoencoder.parameters);
  // on the CPU TorchScript runs without its profiling executor (no profiling run holding
  // every intermediate of a method's first call)
  CHECK_FALSE(torch::jit::getProfilingMode());
  CHECK_FALSE(torch::jit::getExecutorMode());
}
