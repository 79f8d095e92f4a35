// End-to-end: the real copgen binary on tiny models and synthetic GeoTIFFs.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>

#include <gdal_priv.h>
#include <ogr_spatialref.h>

#include "copgen/npy.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;

namespace {

struct Opened {
  explicit Opened(const std::string& path) {
    GDALAllRegister();
    ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_ReadOnly));
  }
  ~Opened() {
    if (ds != nullptr) GDALClose(ds);
  }
  GDALDataset* ds = nullptr;
};

std::array<double, 6> geotransform(GDALDataset* ds) {
  std::array<double, 6> gt{};
  ds->GetGeoTransform(gt.data());
  return gt;
}

const std::string kFast = " --steps 3 --seed 11 ";

std::string make_input(const TempDir& dir, const std::string& name, SyntheticRaster spec = {}) {
  const std::string p = dir.file(name);
  write_synthetic(p, spec);
  return p;
}

}  // namespace

TEST_CASE("cli: translate S2L1C -> S2L2A keeps size - type and georeferencing", "[cli]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  const std::string out = tmp.file("l2a.tif");
  const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(in) + " -o " + quote(out) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Opened o(out), i(in);
  REQUIRE(o.ds != nullptr);
  CHECK(o.ds->GetRasterXSize() == 256);
  CHECK(o.ds->GetRasterYSize() == 256);
  CHECK(o.ds->GetRasterCount() == 3);
  CHECK(o.ds->GetRasterBand(1)->GetRasterDataType() == GDT_Byte);
  CHECK(o.ds->GetRasterBand(1)->GetColorInterpretation() == GCI_RedBand);
  CHECK(o.ds->GetRasterBand(3)->GetColorInterpretation() == GCI_BlueBand);
  CHECK(geotransform(o.ds) == geotransform(i.ds));
  REQUIRE(o.ds->GetSpatialRef() != nullptr);
  CHECK(o.ds->GetSpatialRef()->IsSame(i.ds->GetSpatialRef()));
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_SEED")) == "11");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_STEPS")) == "3");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_SOLVER")) == "dpm-solver-fast");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_GIVEN")) == "S2L1C");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_GENERATED")) == "S2L2A");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_MODELS_SHA256")).size() == 64);
  CHECK(std::string(o.ds->GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE")) == "DEFLATE");
  int bx = 0, by = 0;
  o.ds->GetRasterBand(1)->GetBlockSize(&bx, &by);
  // tiled 256 x 256 (GDAL's default strips for this width are a few rows high)
  CHECK(bx == 256);
  CHECK(by == 256);
  CHECK(r.output.find(out) != std::string::npos);  // says where the output went
  // nothing else left in the directory (no temporary files)
  CHECK((list_dir(tmp.path) == std::vector<std::string>{"l1c.tif", "l2a.tif"}));
}

TEST_CASE("cli: the same seed gives identical bytes - another seed different ones", "[cli]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  auto run = [&](const std::string& out, int seed, int steps) {
    const auto r = run_copgen("translate --from s2_l1c --to s2_l2a -i " + quote(in) + " -o " +
                              quote(tmp.file(out)) + " --steps " + std::to_string(steps) +
                              " --seed " + std::to_string(seed));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return read_file_bytes(tmp.file(out));
  };
  const auto a = run("a.tif", 5, 3);
  const auto b = run("b.tif", 5, 3);
  const auto c = run("c.tif", 6, 3);
  const auto d = run("d.tif", 5, 4);
  CHECK(!a.empty());
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a != d);
}

TEST_CASE("cli: an unseeded run logs its random seed and records it", "[cli]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(in) + " -o " +
                            quote(tmp.file("o.tif")) + " --steps 2");
  REQUIRE(r.exit_code == 0);
  const auto pos = r.output.find("seed: ");
  REQUIRE(pos != std::string::npos);
  const std::string logged = r.output.substr(pos + 6, r.output.find(' ', pos + 6) - pos - 6);
  Opened o(tmp.file("o.tif"));
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_SEED")) == logged);
}

TEST_CASE("cli: several outputs go to a directory or a {modality} pattern and samples get _s<k>", "[cli]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "s1.tif");
  auto r = run_copgen("translate --from S1RTC -i " + quote(in) + " -o " + quote(tmp.file("out") + "/") + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK((list_dir(tmp.file("out")) == std::vector<std::string>{"DEM.tif", "S2L1C.tif", "S2L2A.tif"}));

  r = run_copgen("translate --input S1RTC=" + quote(in) + " --to DEM,S2L2A -o " +
                 quote(tmp.file("p_{modality}.tif")) + " --samples 2" + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* f : {"p_DEM_s0.tif", "p_DEM_s1.tif", "p_S2L2A_s0.tif", "p_S2L2A_s1.tif"}) {
    CHECK(file_exists(tmp.file(f)));
  }
  CHECK(read_file_bytes(tmp.file("p_DEM_s0.tif")) != read_file_bytes(tmp.file("p_DEM_s1.tif")));
}

TEST_CASE("cli: two given modalities - PNG input without georeferencing", "[cli]") {
  TempDir tmp;
  SyntheticRaster png;
  png.format = "PNG";
  png.georeferenced = false;
  const std::string dem = make_input(tmp, "dem.png", png);
  const std::string s1 = make_input(tmp, "s1.tif");
  const auto r = run_copgen("translate --from DEM,S1RTC -i " + quote(dem) + " -i " + quote(s1) +
                            " --to S2L2A -o " + quote(tmp.file("o.tif")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Opened o(tmp.file("o.tif"));
  std::array<double, 6> gt{};
  CHECK(o.ds->GetGeoTransform(gt.data()) != CE_None);  // first input had none
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_GIVEN")) == "DEM,S1RTC");
}

TEST_CASE("cli: generate writes unconditional samples without georeferencing", "[cli]") {
  TempDir tmp;
  const auto r = run_copgen("generate --to DEM,S2L2A -n 2 -o " + quote(tmp.file("gen") + "/") + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK((list_dir(tmp.file("gen")) ==
        std::vector<std::string>{"DEM_s0.tif", "DEM_s1.tif", "S2L2A_s0.tif", "S2L2A_s1.tif"}));
  Opened o(tmp.file("gen/DEM_s0.tif"));
  std::array<double, 6> gt{};
  CHECK(o.ds->GetGeoTransform(gt.data()) != CE_None);
  CHECK(o.ds->GetSpatialRef() == nullptr);
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_GIVEN")) == "none");
}

TEST_CASE("cli: latents out with --save-latents and back in as .npy", "[cli]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(in) + " -o " +
                      quote(tmp.file("a.tif")) + " --cond-latent mean --save-latents " + quote(tmp.file("lat")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK((list_dir(tmp.file("lat")) == std::vector<std::string>{"S2L1C.npy", "S2L2A.npy"}));
  const auto given = copgen::read_npy(tmp.file("lat/S2L1C.npy"));
  CHECK(given.sizes() == torch::IntArrayRef({4, 32, 32}));

  // the saved given latent, fed back as a latent input, reproduces the same output
  r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("lat/S2L1C.npy")) + " -o " +
                 quote(tmp.file("b.tif")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Opened a(tmp.file("a.tif")), b(tmp.file("b.tif"));
  std::vector<uint8_t> pa(256 * 256), pb(256 * 256);
  REQUIRE(a.ds->GetRasterBand(1)->RasterIO(GF_Read, 0, 0, 256, 256, pa.data(), 256, 256, GDT_Byte, 0, 0) == CE_None);
  REQUIRE(b.ds->GetRasterBand(1)->RasterIO(GF_Read, 0, 0, 256, 256, pb.data(), 256, 256, GDT_Byte, 0, 0) == CE_None);
  // the same draws: neither the posterior mean nor a latent input consumes an eps
  CHECK(pa == pb);

  // moments [8, 32, 32] are accepted too
  copgen::write_npy(tmp.file("moments.npy"), torch::zeros({8, 32, 32}));
  r = run_copgen("translate --from S2L1C -i " + quote(tmp.file("moments.npy")) + " --to DEM -o " +
                 quote(tmp.file("c.tif")) + kFast);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(file_exists(tmp.file("c.tif")));
}

TEST_CASE("cli: bad arguments and inputs fail clearly with no output", "[cli][errors]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  const std::string out = tmp.file("out.tif");
  struct Case {
    std::string name;
    std::string args;
    int exit_code;
    std::string message;
  };
  SyntheticRaster one_band;
  one_band.bands = 1;
  const std::string one = make_input(tmp, "one.tif", one_band);
  std::ofstream(tmp.file("bad.npy")) << "nonsense";
  const std::vector<Case> cases = {
      {"unknown modality", "translate --from S3 -i " + quote(in) + " -o " + quote(out), 2, "'S3'"},
      {"given and generated", "translate --from S2L1C --to S2L1C -i " + quote(in) + " -o " + quote(out), 2,
       "--to S2L1C is also given with --from"},
      {"repeated modality", "translate --from S2L1C,s2_l1c -i " + quote(in) + " -i " + quote(in) + " -o " + quote(out),
       2, "more than once"},
      {"inputs do not match --from", "translate --from S2L1C,DEM -i " + quote(in) + " -o " + quote(out), 2, "-i"},
      {"non-positive steps", "translate --from S2L1C -i " + quote(in) + " --to DEM --steps 0 -o " + quote(out), 2,
       "--steps"},
      {"unknown flag", "translate --from S2L1C -i " + quote(in) + " --to DEM --frobnicate -o " + quote(out), 2,
       "frobnicate"},
      {"missing file", "translate --from S2L1C -i " + quote(tmp.file("nope.tif")) + " --to DEM -o " + quote(out), 3,
       "nope.tif"},
      {"wrong band count", "translate --from S2L1C -i " + quote(one) + " --to DEM -o " + quote(out), 3, "1 band"},
      {"corrupt npy", "translate --from S2L1C -i " + quote(tmp.file("bad.npy")) + " --to DEM -o " + quote(out), 3,
       "bad.npy"},
      {"missing models", "translate --models " + quote(tmp.file("no-models")) + " --from S2L1C -i " + quote(in) +
                             " --to DEM -o " + quote(out), 4, "no-models"},
      {"unwritable output directory", "translate --from S2L1C -i " + quote(in) + " --to DEM -o " +
                                          quote(in + "/sub/out.tif"), 5, "l1c.tif/sub"},
      {"several outputs to one file", "translate --from S2L1C -i " + quote(in) + " -o " + quote(out), 2,
       "{modality}"},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      const auto r = run_copgen(c.args + kFast);
      INFO(r.output);
      CHECK(r.exit_code == c.exit_code);
      CHECK_THAT(r.output, Catch::Contains(c.message));
      CHECK_FALSE(file_exists(out));
    }
  }
}

TEST_CASE("cli: model defects exit 4 naming the file - with no output", "[cli][errors]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  const std::string models = tmp.file("models");
  fs::copy(COPGEN_TEST_MODELS, models, fs::copy_options::recursive);
  const std::string base = "translate --models " + quote(models) + " --from S2L1C --to S2L2A -i " + quote(in) +
                           " -o " + quote(tmp.file("o.tif")) + kFast;
  SECTION("corrupt manifest") {
    std::ofstream(models + "/copgen.json", std::ios::trunc) << "{]";
    const auto r = run_command(quote(COPGEN_BIN) + " " + base);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.output, Catch::Contains("copgen.json"));
  }
  SECTION("checksum mismatch") {
    std::ofstream(models + "/autoencoder.pt", std::ios::app) << "tampered";
    const auto r = run_command(quote(COPGEN_BIN) + " " + base);
    CHECK(r.exit_code == 4);
    CHECK_THAT(r.output, Catch::Contains("autoencoder.pt") && Catch::Contains("checksum"));
  }
  CHECK_FALSE(file_exists(tmp.file("o.tif")));
}

TEST_CASE("cli: an existing output needs --overwrite", "[cli][errors]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  const std::string out = tmp.file("o.tif");
  std::ofstream(out) << "keep me";
  auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(in) + " -o " + quote(out) + kFast);
  CHECK(r.exit_code == 5);
  CHECK_THAT(r.output, Catch::Contains("o.tif") && Catch::Contains("--overwrite"));
  CHECK(read_file_bytes(out) == "keep me");
  r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(in) + " -o " + quote(out) + kFast + " --overwrite");
  CHECK(r.exit_code == 0);
  CHECK(read_file_bytes(out) != "keep me");
}

TEST_CASE("cli: --help and --version exit 0 and document exit codes", "[cli]") {
  auto r = run_command(quote(COPGEN_BIN) + " --help");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("translate") && Catch::Contains("Exit codes"));
  r = run_command(quote(COPGEN_BIN) + " --version");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("copgen 0."));
  r = run_command(quote(COPGEN_BIN) + " translate --help");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("--cond-latent"));
}
