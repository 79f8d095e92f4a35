#include "catch_torch.hpp"

#include <nlohmann/json.hpp>

#include "copgen/error.hpp"
#include "copgen/manifest.hpp"

using namespace copgen;
using nlohmann::json;

namespace {

json valid() {
  return json::parse(R"({
    "format": "copgen-models", "format_version": 1,
    "modalities": ["DEM", "S1RTC", "S2L1C", "S2L2A"],
    "latent_shape": [4, 32, 32], "image_size": 256, "scale_factor": 0.18215,
    "schedule": {"type": "discrete_vp", "beta_schedule": "scaled_linear",
                 "beta_start": 0.00085, "beta_end": 0.012, "num_timesteps": 1000},
    "backbone": {"file": "backbone.pt", "sha256": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                 "embed_dim": 1024, "depth": 20, "num_heads": 16, "mlp_ratio": 4, "patch_size": 2,
                 "num_modalities": 4, "qkv_bias": false, "parameters": 286600000,
                 "attention": "math", "source": "nnet_ema_114000.pth"},
    "autoencoder": {"file": "autoencoder.pt", "sha256": "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
                    "ch": 128, "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "z_channels": 4,
                    "embed_dim": 4, "parameters": 83700000, "source": "autoencoder_kl_ema.pth"},
    "exporter": {"script": "export_models.py", "torch_version": "1.13.1"}
  })");
}

std::string error_of(const json& j) {
  try {
    parse_manifest(j.dump(), "m/copgen.json");
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("manifest: a valid manifest parses", "[manifest]") {
  const Manifest m = parse_manifest(valid().dump(), "copgen.json");
  CHECK(m.format_version == 1);
  CHECK(m.backbone.embed_dim == 1024);
  CHECK(m.backbone.depth == 20);
  CHECK(m.autoencoder.ch_mult == std::vector<int>{1, 2, 4, 4});
  CHECK(m.scale_factor == 0.18215);
  CHECK(m.schedule.num_timesteps == 1000);
  CHECK(m.sha256.size() == 64);
  // ~678 GFLOP per sample per call for the full-size backbone (cop-gen-beta.md)
  CHECK(m.backbone_flops_per_call() / 1e9 == Approx(678).epsilon(0.03));
}

TEST_CASE("manifest: each defect is a model error naming the file and the field", "[manifest]") {
  CHECK_THAT(error_of(json("not an object")), Catch::Contains("m/copgen.json") && Catch::Contains("not a JSON object"));
  {
    std::string e;
    try {
      parse_manifest("{\"format\": ", "m/copgen.json");
    } catch (const ModelError& err) {
      e = err.what();
    }
    CHECK_THAT(e, Catch::Contains("not valid JSON"));
  }
  auto j = valid();
  j["format_version"] = 2;
  CHECK_THAT(error_of(j), Catch::Contains("format_version 2"));
  j = valid();
  j.erase("scale_factor");
  CHECK_THAT(error_of(j), Catch::Contains("missing field 'scale_factor'"));
  j = valid();
  j["backbone"].erase("embed_dim");
  CHECK_THAT(error_of(j), Catch::Contains("backbone.embed_dim"));
  j = valid();
  j["backbone"]["embed_dim"] = "big";
  CHECK_THAT(error_of(j), Catch::Contains("backbone.embed_dim") && Catch::Contains("integer"));
  j = valid();
  j["modalities"] = {"S2L1C", "DEM", "S1RTC", "S2L2A"};
  CHECK_THAT(error_of(j), Catch::Contains("modalities"));
  j = valid();
  j["backbone"]["sha256"] = "abc";
  CHECK_THAT(error_of(j), Catch::Contains("backbone.sha256"));
  j = valid();
  j["autoencoder"]["file"] = "../../etc/passwd";
  CHECK_THAT(error_of(j), Catch::Contains("autoencoder.file"));
  j = valid();
  j["backbone"]["num_heads"] = 3;
  CHECK_THAT(error_of(j), Catch::Contains("not divisible"));
  j = valid();
  j["image_size"] = 512;
  CHECK_THAT(error_of(j), Catch::Contains("image_size"));
  j = valid();
  j["schedule"]["type"] = "cosine";
  CHECK_THAT(error_of(j), Catch::Contains("unsupported schedule"));
  j = valid();
  j["latent_shape"] = {4, 32};
  CHECK_THAT(error_of(j), Catch::Contains("latent_shape"));
}

TEST_CASE("manifest: read_manifest names a missing directory or file", "[manifest]") {
  CHECK_THROWS_WITH(read_manifest("/nonexistent/models"),
                    Catch::Contains("'/nonexistent/models'") && Catch::Contains("not found"));
  CHECK_THROWS_WITH(read_manifest("/tmp"), Catch::Contains("copgen.json"));
}
