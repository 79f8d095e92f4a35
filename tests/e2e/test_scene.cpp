// Scenes through the real binary: any size, alignment across CRSs, nodata, COG, fusion.
#include "catch_torch.hpp"

#include <array>
#include <cmath>
#include <filesystem>

#include <gdal_priv.h>
#include <nlohmann/json.hpp>
#include <ogr_spatialref.h>

#include "support.hpp"

using namespace copgen::test;

namespace {

const std::string kFast = " --steps 2 --seed 3 --batch-size 16 ";

}  // namespace

TEST_CASE("scene: a 1000 x 700 scene comes back at its size and georeferencing", "[scene]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 1000;
  spec.height = 700;
  write_synthetic(tmp.file("s.tif"), spec);
  const auto r = run_copgen("translate --from S2L1C --to S2L2A,DEM -i " + quote(tmp.file("s.tif")) + " -o " +
                            quote(tmp.file("out/")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* name : {"out/S2L2A.tif", "out/DEM.tif"}) {
    Ds o(tmp.file(name)), i(tmp.file("s.tif"));
    REQUIRE(o.ds != nullptr);
    CHECK(o.ds->GetRasterXSize() == 1000);
    CHECK(o.ds->GetRasterYSize() == 700);
    std::array<double, 6> a{}, b{};
    o.ds->GetGeoTransform(a.data());
    i.ds->GetGeoTransform(b.data());
    CHECK(a == b);
    CHECK(o.ds->GetSpatialRef()->IsSame(i.ds->GetSpatialRef()));
    CHECK(std::string(o.ds->GetMetadataItem("COPGEN_TILING")) == "fused");
  }
  // no work files left beside the outputs
  CHECK((list_dir(tmp.file("out")) == std::vector<std::string>{"DEM.tif", "S2L2A.tif"}));
}

TEST_CASE("scene: inputs in different UTM zones and resolutions are aligned onto one grid", "[scene]") {
  // an S2 thumbnail in UTM 33N at 10 m, and the same area as a DEM in UTM 34N at 30 m
  TempDir tmp;
  SyntheticRaster s2;
  s2.width = 300;
  s2.height = 280;
  s2.geotransform = {700000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  write_synthetic(tmp.file("s2.tif"), s2);
  // the S2 scene's corners in zone 34
  OGRSpatialReference z33, z34;
  z33.importFromEPSG(32633);
  z34.importFromEPSG(32634);
  z33.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  z34.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&z33, &z34));
  double x = 700000.0 - 500.0, y = 5000000.0 + 500.0;
  ct->Transform(1, &x, &y);
  SyntheticRaster dem;
  dem.bands = 1;
  dem.data_type = "Float32";
  dem.epsg = "EPSG:32634";
  dem.width = 150;
  dem.height = 150;
  dem.geotransform = {x - 200.0, 30.0, 0.0, y + 200.0, 0.0, -30.0};
  write_synthetic(tmp.file("dem.tif"), dem);

  const auto r = run_copgen("translate --from DEM,S2L1C -i " + quote(tmp.file("dem.tif")) + " -i " +
                            quote(tmp.file("s2.tif")) + " --to S2L2A -o " + quote(tmp.file("o.tif")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Ds o(tmp.file("o.tif"));
  std::array<double, 6> gt{};
  o.ds->GetGeoTransform(gt.data());
  // the 10 m S2 input defines the grid: its CRS, resolution and pixel corners
  CHECK(gt[1] == 10.0);
  CHECK(gt[5] == -10.0);
  CHECK(std::fmod(gt[0] - 700000.0, 10.0) == Approx(0.0).margin(1e-6));
  CHECK(o.ds->GetSpatialRef()->IsSame(&z33));
  // the intersection lies inside the S2 scene, so the output is no larger
  CHECK(o.ds->GetRasterXSize() <= 300);
  CHECK(o.ds->GetRasterYSize() <= 280);
  CHECK(o.ds->GetRasterXSize() > 200);
  // a known pixel: the output's top-left corner lies on the S2 grid at a whole pixel
  const double col = (gt[0] - 700000.0) / 10.0, row = (5000000.0 - gt[3]) / 10.0;
  CHECK(col == std::round(col));
  CHECK(row == std::round(row));
  CHECK_THAT(r.output, Catch::Contains("physical bands"));  // the Float32 DEM was detected as elevation
}

TEST_CASE("scene: inputs that do not overlap are an input error", "[scene][errors]") {
  TempDir tmp;
  SyntheticRaster a, b;
  a.width = b.width = 300;
  b.geotransform = {900000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  write_synthetic(tmp.file("a.tif"), a);
  write_synthetic(tmp.file("b.tif"), b);
  const auto r = run_copgen("translate --from S1RTC,S2L1C -i " + quote(tmp.file("a.tif")) + " -i " +
                            quote(tmp.file("b.tif")) + " --to DEM -o " + quote(tmp.file("o.tif")) + kFast);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.output, Catch::Contains("do not overlap") && Catch::Contains("a.tif"));
  CHECK_FALSE(file_exists(tmp.file("o.tif")));
}

TEST_CASE("scene: nodata in a given input is nodata in the output and COG layout", "[scene]") {
  TempDir tmp;
  // a 300 x 260 thumbnail whose left 50 columns are nodata (0)
  SyntheticRaster spec;
  spec.width = 300;
  spec.height = 260;
  write_synthetic(tmp.file("s.tif"), spec);
  {
    GDALAllRegister();
    GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(tmp.file("s.tif").c_str(), GA_Update));
    std::vector<uint8_t> zeros(50 * 260, 0);
    for (int b = 1; b <= 3; ++b) {
      ds->GetRasterBand(b)->SetNoDataValue(0);
      REQUIRE(ds->GetRasterBand(b)->RasterIO(GF_Write, 0, 0, 50, 260, zeros.data(), 50, 260, GDT_Byte, 0, 0) == CE_None);
    }
    GDALClose(ds);
  }
  auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("s.tif")) + " -o " +
                      quote(tmp.file("o.tif")) + " --format COG" + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Ds o(tmp.file("o.tif"));
  REQUIRE(o.ds != nullptr);
  // COG: tiled with overviews, as GDAL reports it
  CHECK(std::string(o.ds->GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE")) == "COG");
  CHECK(o.ds->GetRasterBand(1)->GetOverviewCount() >= 1);
  std::vector<uint8_t> mask(300 * 260);
  REQUIRE(o.ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, 300, 260, mask.data(), 300, 260, GDT_Byte,
                                                          0, 0) == CE_None);
  const auto px = band(o.ds, 1);
  int masked_left = 0, valid_right = 0, zero_left = 0;
  for (int y = 0; y < 260; ++y) {
    for (int x = 0; x < 50; ++x) masked_left += mask[y * 300 + x] == 0, zero_left += px[y * 300 + x] == 0;
    for (int x = 50; x < 300; ++x) valid_right += mask[y * 300 + x] != 0;
  }
  CHECK(masked_left == 50 * 260);
  CHECK(zero_left == 50 * 260);
  CHECK(valid_right == 250 * 260);

  // --fill-nodata generates there instead
  r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("s.tif")) + " -o " +
                 quote(tmp.file("f.tif")) + " --fill-nodata" + kFast);
  REQUIRE(r.exit_code == 0);
  Ds f(tmp.file("f.tif"));
  CHECK((f.ds->GetRasterBand(1)->GetMaskFlags() & GMF_ALL_VALID) != 0);
}

TEST_CASE("scene: physical bands in a Major TOM product folder are rendered and translated", "[scene]") {
  TempDir tmp;
  namespace fs = std::filesystem;
  fs::create_directories(tmp.file("s2/prod"));
  fs::create_directories(tmp.file("s1/prod"));
  for (const char* b : {"B04", "B03", "B02"}) {
    SyntheticRaster band;
    band.bands = 1;
    band.data_type = "UInt16";
    band.width = 300;
    band.height = 300;
    band.seed = b[2];
    write_synthetic(tmp.file(std::string("s2/prod/") + b + ".tif"), band);
  }
  for (const char* b : {"vv", "vh"}) {
    SyntheticRaster band;
    band.bands = 1;
    band.data_type = "Float32";
    band.width = 300;
    band.height = 300;
    write_synthetic(tmp.file(std::string("s1/prod/") + b + ".tif"), band);
  }
  auto r = run_command(quote(COPGEN_BIN) + " render --modality S2L2A -i " + quote(tmp.file("s2/prod")) + " -o " +
                       quote(tmp.file("thumb.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Ds t(tmp.file("thumb.tif"));
  CHECK(t.ds->GetRasterXSize() == 300);
  CHECK(t.ds->GetRasterCount() == 3);
  CHECK(t.ds->GetRasterBand(1)->GetRasterDataType() == GDT_Byte);
  CHECK(std::string(t.ds->GetMetadataItem("COPGEN_INPUT_KIND")) == "physical");

  r = run_copgen("translate --from S1RTC,S2L2A -i " + quote(tmp.file("s1/prod")) + " -i " + quote(tmp.file("s2/prod")) +
                 " --to S2L1C -o " + quote(tmp.file("o.tif")) + " --output-kind physical" + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("physical bands"));
  Ds o(tmp.file("o.tif"));
  CHECK(o.ds->GetRasterCount() == 4);
  CHECK(o.ds->GetRasterBand(1)->GetRasterDataType() == GDT_UInt16);
  CHECK(std::string(o.ds->GetRasterBand(1)->GetDescription()) == "B04");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_INPUT_KINDS")) == "S1RTC:physical,S2L2A:physical");
}

TEST_CASE("scene: --grid-from keeps that input's grid exactly, a coarse one with a warning", "[scene]") {
  // a 300 m RGB scene with a non-round pixel size (as a Landsat quick-look reprojected by
  // someone else), and an S1 pair on another grid (30 m, other origin) covering it
  TempDir tmp;
  SyntheticRaster rgb;
  rgb.width = 150;
  rgb.height = 120;
  rgb.geotransform = {500123.4, 300.038, 0.0, 5000987.6, 0.0, -300.041};
  write_synthetic(tmp.file("rgb.tif"), rgb);
  SyntheticRaster s1;
  s1.width = 1600;
  s1.height = 1300;
  s1.bands = 3;
  s1.geotransform = {499000.0, 30.0, 0.0, 5002000.0, 0.0, -30.0};
  s1.seed = 4;
  write_synthetic(tmp.file("s1.tif"), s1);
  const std::string base = "translate --device cpu --steps 2 --seed 3 --to S2L2A --input S2L1C=" +
                           quote(tmp.file("rgb.tif")) + " --input S1RTC=" + quote(tmp.file("s1.tif"));
  const auto r = run_copgen(base + " --grid-from S2L1C -o " + quote(tmp.file("out.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("300.038 x 300.041 m") && Catch::Contains("trained on 10 m pixels"));
  Ds o(tmp.file("out.tif")), i(tmp.file("rgb.tif"));
  CHECK(o.ds->GetRasterXSize() == 150);
  CHECK(o.ds->GetRasterYSize() == 120);
  std::array<double, 6> a{}, b{};
  o.ds->GetGeoTransform(a.data());
  i.ds->GetGeoTransform(b.data());
  CHECK(a == b);  // exactly: origin and pixel size
  CHECK(o.ds->GetSpatialRef()->IsSame(i.ds->GetSpatialRef()));
  // with --target-res the pixel size is the one asked for, aligned to the input's corner
  const auto t = run_copgen(base + " --grid-from S2L1C --target-res 600 -o " + quote(tmp.file("t.tif")));
  INFO(t.output);
  REQUIRE(t.exit_code == 0);
  Ds ot(tmp.file("t.tif"));
  ot.ds->GetGeoTransform(a.data());
  CHECK(a[0] == b[0]);
  CHECK(a[3] == b[3]);
  CHECK(a[1] == 600.0);
  CHECK(a[5] == -600.0);
}

// ---- regions of interest ---------------------------------------------------------------

namespace {

std::array<double, 6> geotransform_of(const std::string& path) {
  Ds d(path);
  REQUIRE(d.ds != nullptr);
  std::array<double, 6> gt{};
  d.ds->GetGeoTransform(gt.data());
  return gt;
}

std::pair<int, int> size_of(const std::string& path) {
  Ds d(path);
  REQUIRE(d.ds != nullptr);
  return {d.ds->GetRasterXSize(), d.ds->GetRasterYSize()};
}

}  // namespace

TEST_CASE("scene: --srcwin and --projwin give the pixels gdal_translate gives", "[scene][roi]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 700;
  spec.height = 500;
  spec.geotransform = {500000.0, 10.0, 0.0, 5002000.0, 0.0, -10.0};
  write_synthetic(tmp.file("in.tif"), spec);
  const std::string base = "translate --device cpu --steps 1 --seed 2 --from S2L1C --to S2L2A -i " +
                           quote(tmp.file("in.tif"));
  struct Case {
    std::string ours, gdal;
  };
  const std::vector<Case> cases = {
      {"--srcwin 100 50 300 200", "-srcwin 100 50 300 200"},
      {"--srcwin 600 400 200 150", "-srcwin 600 400 200 150"},  // past the corner: nodata there
      {"--projwin 500012.3 5001987.7 502104.9 5000890.2", "-projwin 500012.3 5001987.7 502104.9 5000890.2"},
      {"--projwin 500019.9999 5001980.00001 503120.5 4999880.5", "-projwin 500019.9999 5001980.00001 503120.5 4999880.5"},
  };
  int k = 0;
  for (const Case& c : cases) {
    const std::string ours = tmp.file("ours" + std::to_string(k) + ".tif");
    const std::string gdal = tmp.file("gdal" + std::to_string(k) + ".tif");
    ++k;
    const auto r = run_copgen(base + " " + c.ours + " -o " + quote(ours));
    INFO(c.ours << "\n" << r.output);
    REQUIRE(r.exit_code == 0);
    const auto g = run_command("gdal_translate -q " + c.gdal + " " + quote(tmp.file("in.tif")) + " " + quote(gdal));
    INFO(g.output);
    REQUIRE(g.exit_code == 0);
    CHECK(size_of(ours) == size_of(gdal));
    CHECK(geotransform_of(ours) == geotransform_of(gdal));
  }
  // with --projwin-srs: the corners in another CRS, their bounding box in the grid's
  const auto ll = run_copgen(base + " --projwin 15.01 45.16 15.03 45.14 --projwin-srs EPSG:4326 -o " +
                             quote(tmp.file("ll.tif")));
  INFO(ll.output);
  CHECK(ll.exit_code == 0);
  // bad windows are usage errors, and nothing is written
  expect_copgen_failure(base + " --srcwin 800 0 10 10 -o " + quote(tmp.file("x.tif")), 2,
                        {"--srcwin", "outside the grid", "700 x 500"}, tmp.path);
  expect_copgen_failure(base + " --projwin 500100 4990000 500200 4980000 -o " + quote(tmp.file("x.tif")), 2,
                        {"--projwin", "outside the grid"}, tmp.path);
  expect_copgen_failure(base + " --projwin 500200 5001000 500100 5000000 -o " + quote(tmp.file("x.tif")), 2,
                        {"--projwin", "ULX < LRX"}, tmp.path);
  expect_copgen_failure(base + " --srcwin 0 0 0 10 -o " + quote(tmp.file("x.tif")), 2, {"--srcwin", "at least 1"},
                        tmp.path);
  expect_copgen_failure(base + " --srcwin 0 0 10 10 --projwin 500000 5002000 500100 5001000 -o " +
                            quote(tmp.file("x.tif")),
                        2, {"--projwin and --srcwin"}, tmp.path);
  // values past any scene name the flag and never an overflowed pixel number
  expect_copgen_failure(base + " --projwin 1e15 5002000 1.1e15 5001000 -o " + quote(tmp.file("x.tif")), 2,
                        {"--projwin 1000000000000000 5002000 1100000000000000 5001000: lies 1e+14 x 0 pixels from "
                         "the grid's origin, far outside the inputs (700 x 500 pixels)"},
                        tmp.path);
  expect_copgen_failure(base + " --srcwin 2147483000 0 1000 10 -o " + quote(tmp.file("x.tif")), 2,
                        {"--srcwin 2147483000 0 1000 10: the window ends past pixel 2147483647, beyond any scene"},
                        tmp.path);
  expect_copgen_failure(base + " --target-res 1e-9 -o " + quote(tmp.file("x.tif")), 2,
                        {"--target-res 1e-09: the inputs would be a grid of 7e+12 x 5e+12 pixels"}, tmp.path);
  CHECK_FALSE(file_exists(tmp.file("x.tif")));
}

TEST_CASE("scene: a region of a COG over HTTP reads only what the window needs", "[scene][roi]") {
  TempDir tmp;
  std::filesystem::create_directories(tmp.file("www"));
  SyntheticRaster spec;
  spec.width = 2048;
  spec.height = 2048;
  spec.format = "COG";
  write_synthetic(tmp.file("www/scene.tif"), spec);
  const long file_bytes = static_cast<long>(std::filesystem::file_size(tmp.file("www/scene.tif")));
  LocalServer server(tmp.file("www"), tmp.file("server"));
  const auto r = run_command(models_env() + kRemoteEnv + bin() +
                             " translate --device cpu --steps 1 --seed 2 --from S2L1C --to S2L2A -i " +
                             quote(server.url() + "/scene.tif") + " --srcwin 512 768 256 256 -o " +
                             quote(tmp.file("out.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(size_of(tmp.file("out.tif")) == std::make_pair(256, 256));
  const auto gt = geotransform_of(tmp.file("out.tif"));
  CHECK(gt[0] == 500000.0 + 512 * 10.0);
  CHECK(gt[3] == 5000000.0 - 768 * 10.0);
  const auto [requests, bytes] = server.served();
  WARN("window 256 x 256 of a 2048 x 2048 COG: " << requests << " requests, " << bytes << " of " << file_bytes
                                                  << " bytes");
  CHECK(bytes < file_bytes / 10);  // one 512 x 512 block of 64 and the headers
  CHECK(requests < 20);
}

TEST_CASE("scene: --dry-run prints the plan and writes nothing, and a run logs its cost first", "[scene]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 600;
  spec.height = 500;
  write_synthetic(tmp.file("in.tif"), spec);
  const std::string base = "translate --device cpu --steps 2 --seed 2 --from S2L1C --to S2L2A,DEM -i " +
                           quote(tmp.file("in.tif")) + " -o " + quote(tmp.file("out") + "/");
  const auto d = run_copgen(base + " --dry-run");
  INFO(d.output);
  REQUIRE(d.exit_code == 0);
  // 600 x 500 px: a 75 x 63 latent canvas (rounded up), windows of 32 every 24 cells: 3 x 3
  CHECK_THAT(d.output, Catch::Contains("path: scene") && Catch::Contains("size: 600 x 500 pixels, 10 x 10 m pixels"));
  CHECK_THAT(d.output, Catch::Contains("windows: 9") && Catch::Contains("cost: 1 sample(s), 2 solver step(s), 18 backbone pass(es), 18 window evaluation(s)"));
  CHECK_THAT(d.output, Catch::Contains("memory: about"));
  CHECK_THAT(d.output, Catch::Contains("output: " + tmp.file("out") + "/DEM.tif"));
  CHECK_THAT(d.output, Catch::Contains("output: " + tmp.file("out") + "/S2L2A.tif"));
  CHECK_FALSE(std::filesystem::exists(tmp.file("out")));
  // a tile's plan
  SyntheticRaster tile;
  write_synthetic(tmp.file("tile.tif"), tile);
  const auto t = run_copgen("translate --device cpu --steps 3 --samples 2 --from S2L1C --to S2L2A -i " +
                            quote(tmp.file("tile.tif")) + " -o " + quote(tmp.file("t.tif")) + " --dry-run");
  INFO(t.output);
  REQUIRE(t.exit_code == 0);
  CHECK_THAT(t.output, Catch::Contains("path: tile") &&
                           Catch::Contains("cost: 2 sample(s), 6 solver step(s), 6 backbone pass(es), 6 window evaluation(s)"));
  CHECK_THAT(t.output, Catch::Contains("output: " + tmp.file("t_s0.tif")) &&
                           Catch::Contains("output: " + tmp.file("t_s1.tif")));
  CHECK(list_dir(tmp.path) == (std::vector<std::string>{"in.tif", "tile.tif"}));
  // the run itself says what it will cost before the first solver step
  const auto r = run_copgen(base);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto plan = r.output.find("scene plan: 600 x 500 pixels, 9 window(s), 1 sample(s), 2 solver step(s), "
                                    "18 backbone pass(es), 18 window evaluation(s)");
  const auto first = r.output.find("first solver step:");
  CHECK(plan != std::string::npos);
  CHECK(first != std::string::npos);
  CHECK(plan < first);
}

TEST_CASE("scene: ASF RTC product folders are found by their _VV/_VH files and read in the scale their name says",
          "[scene][asf]") {
  TempDir tmp;
  // one power product, and the same values in dB and as amplitude, with ASF's side files
  const std::string power = tmp.file("S1A_IW_20240419T045904_DVP_RTC30_G_gpuned_ABCD");
  const std::string db = tmp.file("S1A_IW_20240419T045904_DVP_RTC30_G_gduned_ABCD");
  const std::string amp = tmp.file("S1A_IW_20240419T045904_DVP_RTC30_G_gauned_ABCD");
  for (const std::string& dir : {power, db, amp}) std::filesystem::create_directories(dir);
  const std::string stem = "/" + std::filesystem::path(power).filename().string();
  for (const char* pol : {"VV", "VH"}) {
    SyntheticRaster spec;
    spec.bands = 1;
    spec.data_type = "Float32";
    spec.seed = pol[1];
    const std::string p = power + stem + "_" + pol + ".tif";
    write_synthetic(p, spec);
    for (const char* side : {"_ls_map", "_inc_map", "_dem"}) write_synthetic(power + stem + side + ".tif", spec);
    // the dB and amplitude products: the power values rescaled, written with GDAL
    GDALAllRegister();
    GDALDatasetUniquePtr src(GDALDataset::Open(p.c_str(), GDAL_OF_RASTER));
    REQUIRE(src);
    std::vector<float> v(256 * 256);
    REQUIRE(src->GetRasterBand(1)->RasterIO(GF_Read, 0, 0, 256, 256, v.data(), 256, 256, GDT_Float32, 0, 0) == CE_None);
    for (const auto& [dir, f] : std::vector<std::pair<std::string, float (*)(float)>>{
             {db, [](float x) { return static_cast<float>(10.0 * std::log10(static_cast<double>(x))); }},
             {amp, [](float x) { return static_cast<float>(std::sqrt(static_cast<double>(x))); }}}) {
      std::vector<float> w(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) w[i] = f(v[i]);
      const std::string out = dir + "/" + std::filesystem::path(dir).filename().string() + "_" + pol + ".tif";
      GDALDatasetUniquePtr dst(GetGDALDriverManager()->GetDriverByName("GTiff")->CreateCopy(
          out.c_str(), src.get(), FALSE, nullptr, nullptr, nullptr));
      REQUIRE(dst);
      REQUIRE(dst->GetRasterBand(1)->RasterIO(GF_Write, 0, 0, 256, 256, w.data(), 256, 256, GDT_Float32, 0, 0) ==
              CE_None);
    }
  }
  const auto render = [&](const std::string& input, const std::string& out) {
    const auto r = run_copgen("render --modality S1RTC -i " + quote(input) + " -o " + quote(tmp.file(out)));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    Ds d(tmp.file(out));
    REQUIRE(d.ds);
    std::vector<std::uint8_t> px;
    for (int b = 1; b <= 3; ++b) {
      const auto v = band(d.ds, b);
      px.insert(px.end(), v.begin(), v.end());
    }
    return std::make_pair(px, r.output);
  };
  // the power product is read from its _VV and _VH files, as the same files given by hand
  const auto [by_folder, log] = render(power, "power.tif");
  const auto by_hand = render(power + stem + "_VV.tif," + power + stem + "_VH.tif", "hand.tif").first;
  CHECK(by_folder == by_hand);
  // dB and amplitude: rendered from their power; the round trip through float32 may move a
  // value across a level, so at most one level apart, almost everywhere equal
  for (const std::string& dir : {db, amp}) {
    INFO(dir);
    const auto [px, out] = render(dir, "scaled.tif");
    CHECK_THAT(out, Catch::Contains(dir == db ? "values in dB (by the product's name)" : "values in amplitude"));
    REQUIRE(px.size() == by_folder.size());
    std::size_t same = 0;
    int worst = 0;
    for (std::size_t i = 0; i < px.size(); ++i) {
      same += px[i] == by_folder[i];
      worst = std::max(worst, std::abs(int(px[i]) - int(by_folder[i])));
    }
    CHECK(worst <= 1);
    CHECK(same >= px.size() * 99 / 100);
    std::filesystem::remove(tmp.file("scaled.tif"));
  }
}
