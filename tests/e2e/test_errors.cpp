// End-to-end: every failure class of docs/errors.md, run through the real binary. Each
// case checks the exit code, that the message names the culprit, and that the run left
// the directory as it found it (no output, partial or whole, and no temporary file).
// Rows also covered elsewhere are named in docs/errors.md.
#include "catch_torch.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>

#include <gdal_priv.h>
#include <ogr_spatialref.h>
#include <nlohmann/json.hpp>

#include "copgen/npy.hpp"
#include "copgen/sha256.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;

namespace {

const std::string kFast = " --steps 2 --seed 3 ";

// A 3-band Byte GeoTIFF written with GDAL directly: every pixel `value`, optional nodata.
void write_constant(const std::string& path, int size, int value, std::optional<double> nodata) {
  GDALAllRegister();
  GDALDriver* gtiff = GetGDALDriverManager()->GetDriverByName("GTiff");
  GDALDataset* ds = gtiff->Create(path.c_str(), size, size, 3, GDT_Byte, nullptr);
  REQUIRE(ds != nullptr);
  for (int b = 1; b <= 3; ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    if (nodata) band->SetNoDataValue(*nodata);
    REQUIRE(band->Fill(value) == CE_None);
  }
  GDALClose(ds);
}

std::string make_input(const TempDir& dir, const std::string& name, SyntheticRaster spec = {}) {
  const std::string p = dir.file(name);
  write_synthetic(p, spec);
  return p;
}

std::string copy_models(const TempDir& dir) {
  const std::string dst = dir.file("models");
  fs::copy(COPGEN_TEST_MODELS, dst, fs::copy_options::recursive);
  return dst;
}

void edit_manifest(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  const std::string path = dir + "/copgen.json";
  auto j = nlohmann::json::parse(read_file_bytes(path));
  edit(j);
  std::ofstream(path, std::ios::trunc) << j.dump(2);
}

}  // namespace

// ---- inputs: exit 3 -----------------------------------------------------------------

TEST_CASE("errors: input files that cannot be used exit 3 naming the file", "[errors][inputs]") {
  TempDir tmp;
  const std::string out = tmp.file("out.tif");
  auto translate = [&](const std::string& input) {
    return "translate --from S2L1C --to S2L2A -i " + quote(input) + " -o " + quote(out) + kFast;
  };

  SECTION("missing") {
    expect_copgen_failure(translate(tmp.file("nope.tif")), 3, {"S2L1C input", "nope.tif", "not found"}, tmp.path);
  }
  SECTION("a directory given as the input") {
    // a folder may be a product folder of bands (scenes); an empty one is neither
    fs::create_directory(tmp.file("dir.tif"));
    expect_copgen_failure(translate(tmp.file("dir.tif")), 3, {"S2L1C input", "dir.tif"}, tmp.path);
  }
  SECTION("unreadable (no read permission)") {
    const std::string in = make_input(tmp, "secret.tif");
    fs::permissions(in, fs::perms::owner_write);
    const auto prefix = unprivileged_prefix(tmp.path);
    if (!prefix) {
      WARN("running as root without setpriv: permissions cannot be tested");
    } else {
      expect_failure(models_env() + *prefix + bin() + " " + translate(in), 3,
                     {"S2L1C input", "secret.tif", "cannot be read (Permission denied)"}, tmp.path);
    }
  }
  SECTION("not a raster") {
    std::ofstream(tmp.file("text.tif")) << "this is not a GeoTIFF\n";
    expect_copgen_failure(translate(tmp.file("text.tif")), 3, {"text.tif", "not a raster"}, tmp.path);
  }
  SECTION("zero size") {
    std::ofstream(tmp.file("empty.tif")).flush();
    expect_copgen_failure(translate(tmp.file("empty.tif")), 3, {"empty.tif", "file is empty"}, tmp.path);
    std::ofstream(tmp.file("empty.npy")).flush();
    expect_copgen_failure(translate(tmp.file("empty.npy")), 3, {"empty.npy", "file is empty"}, tmp.path);
  }
  SECTION("truncated GeoTIFF") {
    const std::string in = make_input(tmp, "cut.tif");
    fs::resize_file(in, fs::file_size(in) / 2);
    expect_copgen_failure(translate(in), 3, {"S2L1C input", "cut.tif"}, tmp.path);
  }
  SECTION("corrupt GeoTIFF (garbage in the compressed tiles)") {
    const std::string in = tmp.file("bad.tif");
    {
      // DEFLATE-compressed, so garbage in the data fails to decode
      const std::string plain = make_input(tmp, "plain.tif");
      GDALAllRegister();
      GDALDataset* src = static_cast<GDALDataset*>(GDALOpen(plain.c_str(), GA_ReadOnly));
      const char* opts[] = {"COMPRESS=DEFLATE", "TILED=YES", nullptr};
      GDALDataset* dst = GetGDALDriverManager()->GetDriverByName("GTiff")->CreateCopy(
          in.c_str(), src, FALSE, const_cast<char**>(opts), nullptr, nullptr);
      REQUIRE(dst != nullptr);
      GDALClose(dst);
      GDALClose(src);
      fs::remove(plain);
    }
    std::string bytes = read_file_bytes(in);
    for (size_t i = bytes.size() / 4; i < bytes.size() / 2; ++i) bytes[i] = static_cast<char>(i * 131 % 251);
    std::ofstream(in, std::ios::binary | std::ios::trunc) << bytes;
    expect_copgen_failure(translate(in), 3, {"bad.tif", "truncated or corrupt"}, tmp.path);
  }
  SECTION("wrong band count and type") {
    SyntheticRaster spec;
    spec.bands = 2;
    spec.data_type = "Int32";
    const std::string in = make_input(tmp, "two.tif", spec);
    expect_copgen_failure(translate(in), 3, {"S2L1C input", "two.tif", "2 band", "Int32"}, tmp.path);
  }
  SECTION("all nodata (a thumbnail)") {
    write_constant(tmp.file("void.tif"), 256, 0, 0.0);
    expect_copgen_failure(translate(tmp.file("void.tif")), 3, {"void.tif", "every pixel is nodata"}, tmp.path);
  }
  SECTION("NaN and Inf in a latent") {
    torch::Tensor z = torch::zeros({4, 32, 32});
    z[1][2][3] = std::nan("");
    copgen::write_npy(tmp.file("nan.npy"), z);
    z[1][2][3] = INFINITY;
    copgen::write_npy(tmp.file("inf.npy"), z);
    expect_copgen_failure(translate(tmp.file("nan.npy")), 3, {"nan.npy", "NaN or infinite"}, tmp.path);
    expect_copgen_failure(translate(tmp.file("inf.npy")), 3, {"inf.npy", "NaN or infinite"}, tmp.path);
  }
  SECTION("a latent of the wrong shape and a corrupt .npy") {
    copgen::write_npy(tmp.file("shape.npy"), torch::zeros({4, 16, 16}));
    expect_copgen_failure(translate(tmp.file("shape.npy")), 3, {"shape.npy", "[4, 16, 16]"}, tmp.path);
    std::ofstream(tmp.file("junk.npy")) << "nonsense";
    expect_copgen_failure(translate(tmp.file("junk.npy")), 3, {"junk.npy", "not a .npy file"}, tmp.path);
  }
  SECTION("the second of two inputs is bad") {
    const std::string good = make_input(tmp, "s1.tif");
    expect_copgen_failure("translate --from S1RTC,DEM -i " + quote(good) + " -i " + quote(tmp.file("nodem.tif")) +
                              " --to S2L2A -o " + quote(out) + kFast,
                          3, {"DEM input", "nodem.tif"}, tmp.path);
  }
}

namespace {

// A GeoTIFF written with GDAL directly: `bands` bands of `type`, every pixel `value`,
// optional nodata and CRS (WKT or EPSG), 10 m pixels from (500000, 5000000).
void write_scene(const std::string& path, int width, int height, int bands, GDALDataType type, double value,
                 std::optional<double> nodata, const std::string& crs = "EPSG:32633", bool sparse = false) {
  GDALAllRegister();
  const char* opts[] = {"TILED=YES", "SPARSE_OK=TRUE", nullptr};
  GDALDataset* ds = GetGDALDriverManager()->GetDriverByName("GTiff")->Create(
      path.c_str(), width, height, bands, type, sparse ? const_cast<char**>(opts) : nullptr);
  REQUIRE(ds != nullptr);
  if (!crs.empty()) {
    double gt[6] = {500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
    ds->SetGeoTransform(gt);
    OGRSpatialReference srs;
    REQUIRE(srs.SetFromUserInput(crs.c_str()) == OGRERR_NONE);
    ds->SetSpatialRef(&srs);
  }
  for (int b = 1; b <= bands; ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    if (nodata) band->SetNoDataValue(*nodata);
    if (!sparse) REQUIRE(band->Fill(value) == CE_None);
  }
  GDALClose(ds);
}

}  // namespace

TEST_CASE("errors: scene inputs that cannot be used exit 3 naming the file", "[errors][inputs][scenes]") {
  TempDir tmp;
  const std::string out = tmp.file("out.tif");
  auto translate = [&](const std::string& inputs, const std::string& from) {
    return "translate --from " + from + " --to DEM " + inputs + " -o " + quote(out) + kFast;
  };

  SECTION("huge dimensions: a header claiming 400000 x 400000 pixels") {
    write_scene(tmp.file("huge.tif"), 400000, 400000, 3, GDT_Byte, 0, std::nullopt, "EPSG:32633", true);
    expect_copgen_failure(translate("-i " + quote(tmp.file("huge.tif")), "S2L1C"), 3,
                          {"huge.tif", "too large", "400000 x 400000", "gdal_translate -srcwin"}, tmp.path);
  }
  SECTION("all nodata: physical bands without one valid pixel") {
    write_scene(tmp.file("void.tif"), 300, 300, 3, GDT_UInt16, 0, 0.0);
    expect_copgen_failure(translate("--input-kind physical -i " + quote(tmp.file("void.tif")), "S2L1C"), 3,
                          {"S2L1C input", "void.tif", "every pixel", "nodata"}, tmp.path);
  }
  SECTION("no georeferencing where it is needed") {
    write_scene(tmp.file("a.tif"), 300, 300, 3, GDT_Byte, 100, std::nullopt, "");
    write_scene(tmp.file("b.tif"), 280, 300, 3, GDT_Byte, 100, std::nullopt, "");
    expect_copgen_failure(translate("-i " + quote(tmp.file("a.tif")) + " -i " + quote(tmp.file("b.tif")), "S2L1C,S2L2A"),
                          3, {"b.tif", "no georeferencing", "300x300 and 280x300"}, tmp.path);
    expect_copgen_failure(translate("-i " + quote(tmp.file("a.tif")) + " --target-crs EPSG:4326 --target-res 10", "S2L1C"),
                          3, {"--target-crs", "a.tif", "no georeferencing"}, tmp.path);
  }
  SECTION("a CRS that cannot be transformed") {
    write_scene(tmp.file("utm.tif"), 300, 300, 3, GDT_Byte, 100, std::nullopt);
    write_scene(tmp.file("local.tif"), 300, 300, 3, GDT_Byte, 100, std::nullopt, R"(LOCAL_CS["arbitrary",UNIT["metre",1]])");
    expect_copgen_failure(
        translate("-i " + quote(tmp.file("utm.tif")) + " -i " + quote(tmp.file("local.tif")), "S2L1C,S2L2A"), 3,
        {"local.tif", "CRS cannot be transformed"}, tmp.path);
  }
  SECTION("an --input-dir without either layout") {
    fs::create_directories(tmp.file("tree/random"));
    expect_copgen_failure("translate --from S2L1C --input-dir " + quote(tmp.file("tree")) + " --output-dir " +
                              quote(tmp.file("tree-out")) + kFast,
                          3, {"--input-dir", "tree", "found neither Major TOM folders"}, tmp.path);
    fs::create_directories(tmp.file("tree/S2L2A"));
    expect_copgen_failure("translate --from S2L1C --input-dir " + quote(tmp.file("tree")) + " --output-dir " +
                              quote(tmp.file("tree-out")) + kFast,
                          3, {"--input-dir", "no folder for --from modality S2L1C", "found S2L2A"}, tmp.path);
  }
}

TEST_CASE("errors: NaN and Inf pixels in physical bands are nodata in the outputs", "[errors][inputs][scenes]") {
  TempDir tmp;
  const std::string in = tmp.file("nan.tif");
  write_scene(in, 300, 300, 3, GDT_Float32, 1500.0, std::nullopt);
  {
    GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(in.c_str(), GA_Update));
    REQUIRE(ds != nullptr);
    std::vector<float> block(20 * 20, std::nanf(""));
    block[0] = INFINITY;
    for (int b = 1; b <= 3; ++b) {
      REQUIRE(ds->GetRasterBand(b)->RasterIO(GF_Write, 100, 120, 20, 20, block.data(), 20, 20, GDT_Float32, 0, 0) == CE_None);
    }
    GDALClose(ds);
  }
  const std::string out = tmp.file("out.tif");
  const auto r = run_copgen("translate --from S2L1C --to S2L2A --input-kind physical -i " + quote(in) + " -o " +
                            quote(out) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("400 of 90000 pixels are nodata, NaN or outside the input"));
  GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(out.c_str(), GA_ReadOnly));
  REQUIRE(ds != nullptr);
  std::vector<std::uint8_t> mask(300 * 300);
  REQUIRE(ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, 300, 300, mask.data(), 300, 300, GDT_Byte, 0, 0) ==
          CE_None);
  GDALClose(ds);
  int masked = 0;
  for (int y = 0; y < 300; ++y) {
    for (int x = 0; x < 300; ++x) {
      const bool inside = x >= 100 && x < 120 && y >= 120 && y < 140;
      if (mask[static_cast<size_t>(y) * 300 + x] == 0) ++masked;
      if (inside) CHECK(mask[static_cast<size_t>(y) * 300 + x] == 0);
    }
  }
  CHECK(masked == 400);
}

// ---- models: exit 4 -----------------------------------------------------------------

TEST_CASE("errors: model defects exit 4 naming the file", "[errors][models]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  auto run = [&](const std::string& models, const std::vector<std::string>& says) {
    expect_failure(bin() + " translate --models " + quote(models) + " --from S2L1C --to S2L2A -i " + quote(in) +
                       " -o " + quote(tmp.file("o.tif")) + kFast,
                   4, says, tmp.path);
  };
  SECTION("missing directory") { run(tmp.file("no-models"), {"no-models", "not found"}); }
  SECTION("missing directory from COPGEN_MODELS") {
    expect_failure("COPGEN_MODELS=" + quote(tmp.file("env-models")) + " " + bin() + " translate --from S2L1C -i " +
                       quote(in) + " --to DEM -o " + quote(tmp.file("o.tif")) + kFast,
                   4, {"env-models", "COPGEN_MODELS"}, tmp.path);
  }
  SECTION("manifest missing") {
    const std::string m = copy_models(tmp);
    fs::remove(m + "/copgen.json");
    run(m, {"copgen.json", m});
  }
  SECTION("manifest corrupt") {
    const std::string m = copy_models(tmp);
    std::ofstream(m + "/copgen.json", std::ios::trunc) << "{ \"format\": \"copgen-models\", ";
    run(m, {"copgen.json", "not valid JSON"});
  }
  SECTION("manifest of an unknown version") {
    const std::string m = copy_models(tmp);
    edit_manifest(m, [](nlohmann::json& j) { j["format_version"] = 99; });
    run(m, {"copgen.json", "format_version 99"});
  }
  SECTION("checksum mismatch") {
    const std::string m = copy_models(tmp);
    std::ofstream(m + "/backbone.pt", std::ios::app | std::ios::binary) << "x";
    run(m, {"backbone.pt", "checksum mismatch"});
  }
  SECTION("module file missing") {
    const std::string m = copy_models(tmp);
    fs::remove(m + "/autoencoder.pt");
    run(m, {"autoencoder.pt", "missing"});
  }
  SECTION("a file that is not TorchScript") {
    const std::string m = copy_models(tmp);
    std::ofstream(m + "/autoencoder.pt", std::ios::trunc) << "not a zip";
    edit_manifest(m, [&](nlohmann::json& j) { j["autoencoder"]["sha256"] = copgen::sha256_file(m + "/autoencoder.pt"); });
    run(m, {"autoencoder.pt", "TorchScript"});
  }
  SECTION("a TorchScript file with the wrong interface") {
    const std::string m = copy_models(tmp);
    fs::copy_file(m + "/autoencoder.pt", m + "/backbone.pt", fs::copy_options::overwrite_existing);
    edit_manifest(m, [&](nlohmann::json& j) { j["backbone"]["sha256"] = copgen::sha256_file(m + "/backbone.pt"); });
    run(m, {"backbone.pt", "forward"});
  }
  SECTION("dimensions that disagree between manifest and file") {
    const std::string m = copy_models(tmp);
    edit_manifest(m, [](nlohmann::json& j) { j["backbone"]["depth"] = 6; });
    run(m, {"backbone.pt", "depth is", "manifest says 6"});
  }
}

// ---- arguments: exit 2 --------------------------------------------------------------

TEST_CASE("errors: bad arguments exit 2 naming the flag", "[errors][arguments]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  const std::string i = " -i " + quote(in);
  const std::string o = " -o " + quote(tmp.file("o.tif"));
  struct Case {
    std::string name, args;
    std::vector<std::string> says;
  };
  const std::vector<Case> cases = {
      {"no subcommand", "", {"subcommand"}},
      {"unknown subcommand", "frobnicate", {"unknown command 'frobnicate'", "translate"}},
      {"unknown flag", "translate --from S2L1C" + i + " --to DEM --frobnicate" + o, {"--frobnicate"}},
      {"missing -o", "translate --from S2L1C" + i + " --to DEM", {"--output"}},
      {"unknown modality", "translate --from S3" + i + o, {"--from", "'S3'"}},
      {"unknown modality in --to", "translate --from S2L1C --to S2L3" + i + o, {"--to", "'S2L3'"}},
      {"repeated modality", "translate --from S2L1C,s2_l1c" + i + i + o, {"--from", "S2L1C", "more than once"}},
      {"repeated modality in --to", "translate --from S2L1C --to DEM,dem" + i + o, {"--to", "DEM", "more than once"}},
      {"repeated --input modality", "translate --input S2L1C=" + quote(in) + " --input s2_l1c=" + quote(in) + o,
       {"--input", "S2L1C", "more than once"}},
      {"a modality both given and generated", "translate --from S2L1C --to S2L1C" + i + o,
       {"--to S2L1C is also given with --from"}},
      {"nothing to generate", "translate --from DEM,S1RTC,S2L1C,S2L2A" + i + i + i + i + o, {"nothing to generate"}},
      {"-i count differs from --from", "translate --from S2L1C,DEM" + i + o, {"--from", "-i"}},
      {"-i and --input mixed", "translate --from S2L1C" + i + " --input DEM=" + quote(in) + o, {"-i", "--input"}},
      {"--input without =", "translate --input S2L1C" + o, {"--input", "'S2L1C'", "MODALITY=PATH"}},
      {"--input with an unknown modality", "translate --input S9=" + quote(in) + o, {"--input", "'S9'"}},
      {"--from disagrees with --input", "translate --from DEM --input S2L1C=" + quote(in) + o, {"--from", "--input"}},
      {"non-positive steps", "translate --from S2L1C --to DEM --steps 0" + i + o, {"--steps", "got 0"}},
      {"a shard index out of range",
       "translate --from S2L1C --input-dir " + quote(tmp.path) + " --output-dir " + quote(tmp.file("out")) + " --shard 3/3",
       {"--shard", "3/3", "0 <= I < N"}},
      {"a malformed shard", "translate --from S2L1C --input-dir " + quote(tmp.path) + " --output-dir " +
                                quote(tmp.file("out")) + " --shard half",
       {"--shard", "half", "I/N"}},
      {"--samples in batch mode",
       "translate --from S2L1C --input-dir " + quote(tmp.path) + " --output-dir " + quote(tmp.file("out")) +
           " --samples 2",
       {"--samples", "one sample per tuple"}},
      {"steps not a number", "translate --from S2L1C --to DEM --steps many" + i + o, {"--steps", "many"}},
      {"non-positive samples", "translate --from S2L1C --to DEM --samples 0" + i + o, {"--samples", "got 0"}},
      {"non-positive batch size", "generate --to DEM --batch-size -1" + o, {"--batch-size", "got -1"}},
      {"negative threads", "translate --from S2L1C --to DEM --threads -2" + i + o, {"--threads", "-2"}},
      {"unknown solver", "translate --from S2L1C --to DEM --solver euler" + i + o, {"euler"}},
      {"unknown time grid", "translate --from S2L1C --to DEM --time-grid cosine" + i + o, {"cosine"}},
      {"unknown format", "translate --from S2L1C --to DEM --format JPEG" + i + o, {"--format", "JPEG"}},
      {"unknown cond-latent", "translate --from S2L1C --to DEM --cond-latent mode" + i + o, {"--cond-latent", "mode"}},
      {"unknown device", "translate --from S2L1C --to DEM --device tpu" + i + o, {"--device", "tpu"}},
      {"unknown precision", "translate --from S2L1C --to DEM --precision fp8" + i + o, {"--precision", "fp8"}},
      {"half precision on the CPU", "translate --from S2L1C --to DEM --device cpu --precision fp16" + i + o,
       {"--precision fp16"}},
      {"half precision autoencoder on the CPU",
       "translate --from S2L1C --to DEM --device cpu --ae-precision fp16" + i + o, {"--ae-precision fp16"}},
      {"unknown autoencoder precision", "translate --from S2L1C --to DEM --ae-precision fp8" + i + o,
       {"--ae-precision", "fp8"}},
      {"tf32 neither on nor off", "translate --from S2L1C --to DEM --tf32 yes" + i + o, {"--tf32", "yes"}},
      {"several outputs to one file", "translate --from S2L1C" + i + o, {"-o", "o.tif", "{modality}"}},
      // an image named like a latent (where it would collide with one) is refused for its name
      {"an image output that is not GeoTIFF",
       "translate --from S2L1C --to S2L2A" + i + " -o " + quote(tmp.file("{modality}.npy")) + " --save-latents " +
           quote(tmp.path),
       {"-o", "S2L2A.npy", "GeoTIFF", "not '.npy'"}},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      const bool own_steps = c.args.find("--steps") != std::string::npos;
      expect_copgen_failure(c.args + (own_steps ? " --seed 3" : kFast), 2, c.says, tmp.path);
    }
  }
}

// ---- outputs: exit 5 ----------------------------------------------------------------

TEST_CASE("errors: outputs that cannot be written exit 5 naming the path", "[errors][outputs]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  const std::string base = "translate --from S2L1C --to S2L2A -i " + quote(in) + kFast;

  SECTION("exists without --overwrite") {
    std::ofstream(tmp.file("o.tif")) << "keep me";
    expect_copgen_failure(base + " -o " + quote(tmp.file("o.tif")), 5, {"o.tif", "exists", "--overwrite"}, tmp.path);
    CHECK(read_file_bytes(tmp.file("o.tif")) == "keep me");
  }
  SECTION("a latent output exists without --overwrite") {
    fs::create_directory(tmp.file("lat"));
    std::ofstream(tmp.file("lat/S2L2A.npy")) << "keep me";
    expect_copgen_failure(base + " -o " + quote(tmp.file("o.tif")) + " --save-latents " + quote(tmp.file("lat")), 5,
                          {"S2L2A.npy", "exists", "--overwrite"}, tmp.path);
  }
  SECTION("the output directory is a file") {
    expect_copgen_failure(base + " -o " + quote(in + "/sub/o.tif"), 5, {"l1c.tif/sub"}, tmp.path);
  }
  SECTION("the output directory is not writable") {
    fs::create_directory(tmp.file("ro"));
    const auto prefix = unprivileged_prefix(tmp.path);
    fs::permissions(tmp.file("ro"), fs::perms::owner_read | fs::perms::owner_exec | fs::perms::others_read |
                                        fs::perms::others_exec);
    if (!prefix) {
      WARN("running as root without setpriv: permissions cannot be tested");
    } else {
      expect_failure(models_env() + *prefix + bin() + " " + base + " -o " + quote(tmp.file("ro/o.tif")), 5,
                     {"output directory", "/ro", "not writable"}, tmp.path);
    }
  }
  SECTION("disk full (a file-size limit makes write() fail with EFBIG)") {
    // 20 blocks of 512 bytes: the probe file fits, the ~200 KB GeoTIFF does not.
    const std::string cmd = "sh -c " + quote("ulimit -f 20; trap '' XFSZ; exec " + bin() + " " + base + " -o " +
                                             quote(tmp.file("o.tif")));
    expect_failure(models_env() + cmd, 5, {"output", "o.tif", "cannot write"}, tmp.path);
  }
  // write_npy and write_image_u8 under the same limit, in-process: tests/unit/test_reliability.cpp
}

// ---- runtime: exit 1 ----------------------------------------------------------------

TEST_CASE("errors: NaN in the network output exits 1 naming the tile", "[errors][runtime]") {
  TempDir tmp;
  // Models whose backbone holds a NaN weight: every input is valid, the network is not.
  // (Absurd inputs, such as a latent of 3e38, are refused before any work: test_safety.cpp.)
  const std::string models = copy_models(tmp);
  const std::string script = tmp.file("poison.py");
  std::ofstream(script) << "import hashlib, json, sys, torch\n"
                           "d = sys.argv[1]\n"
                           "m = json.load(open(d + '/copgen.json'))\n"
                           "f = d + '/' + m['backbone']['file']\n"
                           "mod = torch.jit.load(f)\n"
                           "with torch.no_grad():\n"
                           "    next(iter(mod.parameters())).fill_(float('nan'))\n"
                           "mod.save(f)\n"
                           "m['backbone']['sha256'] = hashlib.sha256(open(f, 'rb').read()).hexdigest()\n"
                           "json.dump(m, open(d + '/copgen.json', 'w'), indent=2)\n";
  const auto poisoned = run_command(quote(COPGEN_PYTHON) + " " + quote(script) + " " + quote(models) + " 2>&1");
  REQUIRE(poisoned.exit_code == 0);
  fs::remove(script);
  const std::string in = make_input(tmp, "l1c.tif");
  expect_failure("COPGEN_MODELS=" + quote(models) + " " + bin() + " translate --from S2L1C --to S2L2A -i " +
                     quote(in) + " -o " + quote(tmp.file("o.tif")) + kFast,
                 1, {"NaN or infinite", "l1c.tif"}, tmp.path);
}

TEST_CASE("errors: running out of memory exits 1 suggesting a batch size that fits", "[errors][runtime]") {
  if (built_with_asan()) {
    WARN("skipped under AddressSanitizer, which reserves more address space than ulimit -v allows");
    return;
  }
  TempDir tmp;
  // A 2.5 GiB address-space limit beyond what the libraries take: LibTorch and the tiny
  // models load; a batch of 512 samples' attention over ~1000 tokens (gigabytes) does not.
  // The libraries' share is this test process's own address space, as it links the same
  // ones: about 1 GiB with Debian's CPU LibTorch, several with a CUDA LibTorch's libraries
  // (under a flat 2.5 GiB limit copgen could not even load those).
  std::int64_t own_kib = 0;
  {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("VmSize:", 0) == 0) own_kib = std::stoll(line.substr(7));
    }
  }
  const std::int64_t limit_kib = std::max<std::int64_t>(2621440, own_kib + 1572864);
  INFO("ulimit -v " << limit_kib << " (this process: " << own_kib << " KiB)");
  const std::string cmd = "sh -c " + quote("ulimit -v " + std::to_string(limit_kib) + "; exec " + bin() +
                                           " generate --to DEM --samples 512 --batch-size 512 --threads 1 -o " +
                                           quote(tmp.file("g.tif")) + kFast);
  const auto r = expect_failure(models_env() + cmd, 1, {"out of memory", "batch of 512", "try --batch-size 256"},
                                tmp.path);
  CHECK_THAT(r.output, Catch::Contains("unconditional samples"));
}

// ---- interrupted: exit 130 ----------------------------------------------------------

TEST_CASE("errors: SIGINT and SIGTERM stop at the next step with exit 130 and no files", "[errors][signals]") {
  TempDir tmp;
  const std::string in = make_input(tmp, "l1c.tif");
  for (const std::string sig : {"INT", "TERM"}) {
    SECTION("SIG" + sig) {
      // Start a long run, wait for its "translate ..." line (sampling starts right after
      // it), send the signal, and report the exit status. The wait is bounded (60 s).
      const std::string log = tmp.file("log.txt");
      const std::string script =
          models_env() + bin() + " translate --from S2L1C --to S2L2A,DEM -i " + quote(in) + " -o " +
          quote(tmp.file("out") + "/") + " --samples 4 --steps 1000 --seed 1 > " + quote(log) + " 2>&1 & pid=$!; " +
          "i=0; while ! grep -q 'translate S2L1C' " + quote(log) + " && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; " +
          "kill -" + sig + " $pid; wait $pid; echo \"exit=$?\"; cat " + quote(log) + "; rm -f " + quote(log);
      const auto r = run_command(script);
      INFO(r.output);
      CHECK_THAT(r.output, Catch::Contains("exit=130"));
      CHECK_THAT(r.output, Catch::Contains("interrupted"));
      // the output directory the plan made is removed again: nothing was written into it
      CHECK(file_names_under(tmp.path) == (std::vector<std::string>{"l1c.tif"}));
    }
  }
}
